<?php
/**
 * Loaded by \Bitrix\Main\Loader::includeModule('loyaltygateway.loyalty'). The module's classes
 * live in lib/ under the namespace Loyaltygateway\Loyalty, which Bitrix's autoloader maps to
 * lib/<lowercase file>.php for partner modules; they are listed here as well so the module also
 * works where that autoloader is not used.
 */
\Bitrix\Main\Loader::registerAutoLoadClasses('loyaltygateway.loyalty', [
    'Loyaltygateway\\Loyalty\\Agent' => 'lib/agent.php',
    'Loyaltygateway\\Loyalty\\Checkout' => 'lib/checkout.php',
    'Loyaltygateway\\Loyalty\\Config' => 'lib/config.php',
    'Loyaltygateway\\Loyalty\\Customers' => 'lib/customers.php',
    'Loyaltygateway\\Loyalty\\EventHandlers' => 'lib/eventhandlers.php',
    'Loyaltygateway\\Loyalty\\Gateway' => 'lib/gateway.php',
    'Loyaltygateway\\Loyalty\\Orders' => 'lib/orders.php',
    'Loyaltygateway\\Loyalty\\Queue' => 'lib/queue.php',
    'Loyaltygateway\\Loyalty\\Reply' => 'lib/reply.php',
    'Loyaltygateway\\Loyalty\\Signer' => 'lib/signer.php',
    'Loyaltygateway\\Loyalty\\Snapshot' => 'lib/snapshot.php',
]);
