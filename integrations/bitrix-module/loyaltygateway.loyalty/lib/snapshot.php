<?php
namespace Loyaltygateway\Loyalty;

use Bitrix\Sale\BasketItem;
use Bitrix\Sale\Order;

/**
 * The `data` of each event, read from the sale module's objects exactly as docs/bitrix.md maps
 * them: money as decimal strings with two places, quantities with at most three, the whole
 * saved order with its VERSION.
 */
final class Snapshot
{
    public static function money($value): string
    {
        return number_format((float)$value, 2, '.', '');
    }

    public static function quantity($value): string
    {
        $text = number_format((float)$value, 3, '.', '');
        return rtrim(rtrim($text, '0'), '.');
    }

    public static function orderId(Order $order): string
    {
        $id = Config::orderIdField() === 'ID' ? $order->getId() : $order->getField('ACCOUNT_NUMBER');
        return (string)($id ?: $order->getId());
    }

    public static function line(BasketItem $item): array
    {
        $xmlId = (string)$item->getField('PRODUCT_XML_ID');
        return [
            'line_id' => (string)$item->getId(),
            'product_id' => $xmlId !== '' ? $xmlId : (string)$item->getField('PRODUCT_ID'),
            'name' => (string)$item->getField('NAME'),
            'quantity' => self::quantity($item->getQuantity()),
            'price' => self::money($item->getPrice()),
            'amount' => self::money($item->getFinalPrice()),
        ];
    }

    public static function lines(Order $order): array
    {
        $lines = [];
        foreach ($order->getBasket() as $item) {
            if ($item->getQuantity() > 0) {
                $lines[] = self::line($item);
            }
        }
        return $lines;
    }

    public static function points(Order $order): int
    {
        return max(0, (int)Orders::property($order, Config::property('points')));
    }

    /** OnBeforeSaleOrderFinalAction: the cart with the points the customer asked to pay with. */
    public static function cart(Order $order): array
    {
        return [
            'customer' => Customers::of($order),
            'lines' => self::lines($order),
            'points_to_spend' => self::points($order),
            'promo_codes' => [],
            'store' => null,
        ];
    }

    /** Every order event: the whole saved order. */
    public static function order(Order $order): array
    {
        $shipments = [];
        foreach ($order->getShipmentCollection() as $shipment) {
            if ($shipment->isSystem()) {
                continue;
            }
            $lines = [];
            foreach ($shipment->getShipmentItemCollection() as $shipmentItem) {
                if ($shipmentItem->getQuantity() > 0) {
                    $lines[] = [
                        'line_id' => (string)$shipmentItem->getBasketId(),
                        'quantity' => self::quantity($shipmentItem->getQuantity()),
                    ];
                }
            }
            $deductedAt = $shipment->getField('DATE_DEDUCTED');
            $shipments[] = [
                'shipment_id' => (string)$shipment->getId(),
                'shipped' => $shipment->getField('DEDUCTED') === 'Y',
                'shipped_at' => $deductedAt ? $deductedAt->format('c') : null,
                'lines' => $lines,
            ];
        }
        $placed = $order->getDateInsert();
        return [
            'order_id' => self::orderId($order),
            'version' => (int)$order->getField('VERSION'),
            'customer' => Customers::of($order),
            'lines' => self::lines($order),
            'points_to_spend' => self::points($order),
            'paid' => $order->isPaid(),
            'cancelled' => $order->isCanceled(),
            'status' => (string)$order->getField('STATUS_ID'),
            'placed_at' => $placed ? $placed->format('c') : null,
            'shipments' => $shipments,
            'returns' => Orders::returns($order),
            'promo_codes' => [],
            'store' => null,
        ];
    }
}
