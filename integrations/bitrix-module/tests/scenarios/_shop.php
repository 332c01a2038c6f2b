<?php
/** Shared by the scenarios: a shop's order built as the checkout builds it. */
require __DIR__ . '/../stubs/bootstrap.php';

use Bitrix\Sale\Order;

function shop_user(array $fields): int
{
    return (new CUser())->Register($fields);
}

/** A cart of two goods (1 250.50 roubles), with the order properties the module uses. */
function shop_order(int $userId, int $points, string $phone = '', string $email = ''): Order
{
    $order = Order::create('s1', $userId, 'RUB');
    $basket = $order->getBasket();
    $basket->add(['PRODUCT_ID' => 11, 'PRODUCT_XML_ID' => 'DRILL-01', 'NAME' => 'Дрель ударная', 'QUANTITY' => 2, 'PRICE' => 500.00]);
    $basket->add(['PRODUCT_ID' => 12, 'PRODUCT_XML_ID' => 'BITS-SET', 'NAME' => 'Набор бит', 'QUANTITY' => 1, 'PRICE' => 250.50]);
    $properties = $order->getPropertyCollection();
    $properties->add('PHONE', $phone);
    $properties->add('EMAIL', $email);
    $properties->add('LOYALTY_POINTS', (string)$points);
    $properties->add('LOYALTY_DISCOUNT', '');
    $properties->add('LOYALTY_ACCRUE', '');
    $properties->add('LOYALTY_RETURNS', '');
    return $order;
}

function replies(array $replies): array
{
    $out = [];
    foreach ($replies as $id => $reply) {
        $out[(string)$id] = ['outcome' => $reply->outcome, 'status' => $reply->status, 'code' => $reply->code, 'result' => $reply->result];
    }
    return $out;
}

function queue_state(): array
{
    $queue = \Loyaltygateway\Loyalty\Queue::default();
    return ['pending' => count($queue->pending()), 'failed' => count($queue->failed())];
}
