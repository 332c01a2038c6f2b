<?php
/** The agent as Bitrix runs it (eval of the registered call): delivers what is queued. */
require __DIR__ . '/../stubs/bootstrap.php';
\Bitrix\Main\Loader::includeModule('loyaltygateway.loyalty');

report('agents', array_keys(CAgent::$agents));
report('before', ['pending' => count(\Loyaltygateway\Loyalty\Queue::default()->pending())]);
if (getenv('LOYALTY_FORCE')) {
    report('processed', \Loyaltygateway\Loyalty\Queue::default()->process(100, true));
} else {
    CAgent::runAll();
}
$queue = \Loyaltygateway\Loyalty\Queue::default();
report('queue', ['pending' => count($queue->pending()), 'failed' => count($queue->failed())]);
