<?php
/** An order paid with points, then cancelled by the manager: the points come back. */
require __DIR__ . '/_shop.php';

use Loyaltygateway\Loyalty\Orders;

$user = shop_user(['LOGIN' => 'boris', 'NAME' => 'Борис', 'EMAIL' => '', 'PERSONAL_PHONE' => '', 'UF_LOYALTY_CARD' => '2700000000021']);
$order = shop_order($user, 200, '', 'boris@example.ru');
$order->doFinalAction(true);
$order->save();
report('placed', replies(Orders::flush()));
$order->setCanceled(true);
$order->save();
report('cancelled', replies(Orders::flush()));
report('queue', queue_state());
