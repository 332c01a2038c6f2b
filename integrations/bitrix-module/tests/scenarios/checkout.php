<?php
/**
 * A whole web order: the cart priced with points, the new order's hold, its saved snapshot,
 * payment and a partial shipment, a return, and the balance in the personal account.
 */
require __DIR__ . '/_shop.php';

use Loyaltygateway\Loyalty\Orders;

$points = (int)(getenv('LOYALTY_TEST_POINTS') ?: 300);
$user = shop_user(['LOGIN' => 'anna', 'NAME' => 'Анна', 'EMAIL' => '', 'PERSONAL_PHONE' => '', 'UF_LOYALTY_CARD' => '2700000000014']);
$order = shop_order($user, $points, '+79990000001');

$order->doFinalAction(true);
report('cart', $order->getPropertyCollection()->values());
$saved = $order->save();
report('saved', ['ok' => $saved->isSuccess(), 'errors' => $saved->getErrorMessages(), 'id' => $order->getId()]);
if (!$saved->isSuccess()) {
    exit(0);
}
report('placed', replies(Orders::flush()));

$shipment = $order->getShipmentCollection()->createItem();
$shipment->addItem($order->getBasket()->byProduct('DRILL-01'), 1);
$order->setPaid(true);
$order->setField('STATUS_ID', 'P');
$order->save();
$shipment->setDeducted('2024-05-21T10:00:00+03:00');
$order->save();
report('shipped', replies(Orders::flush()));

$returned = Orders::recordReturn($order, 'R-1', [$order->getBasket()->byProduct('DRILL-01')->getId() => 1], new DateTimeImmutable('2024-05-25T09:00:00+03:00'));
report('returned', ['outcome' => $returned->outcome, 'result' => $returned->result]);

CUser::$current = $user;
ob_start();
$component = new CBitrixComponent(LOYALTY_MODULE_DIR . '/install/components/loyaltygateway/loyalty.balance');
$component->executeComponent();
report('balance_html', ob_get_clean());
report('queue', queue_state());
