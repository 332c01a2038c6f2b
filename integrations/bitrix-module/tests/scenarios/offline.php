<?php
/**
 * The gateway cannot take events (down, or the secret is wrong): an order without points is
 * saved and its snapshot queued, an order paid with points is stopped with the customer's
 * message, a new user is queued; nothing is lost.
 */
require __DIR__ . '/_shop.php';

use Loyaltygateway\Loyalty\Orders;

$user = shop_user(['LOGIN' => 'vera', 'NAME' => 'Вера', 'EMAIL' => 'vera@example.ru', 'PERSONAL_PHONE' => '+79990000003',
    'UF_LOYALTY_CARD' => '2700000000038']);
$order = shop_order($user, 0, '+79990000003');
$order->doFinalAction(true);
$saved = $order->save();
$order->setPaid(true);
$order->save();
report('saved', ['ok' => $saved->isSuccess(), 'id' => $order->getId(), 'version' => $order->getField('VERSION')]);
report('sent', replies(Orders::flush()));

$withPoints = shop_order($user, 100, '+79990000003');
$refused = $withPoints->save();
report('with_points', ['ok' => $refused->isSuccess(), 'errors' => $refused->getErrorMessages()]);

shop_user(['LOGIN' => 'dan', 'NAME' => 'Даниил', 'EMAIL' => 'dan@example.ru', 'PERSONAL_PHONE' => '+79125550011']);
report('queue', queue_state());
