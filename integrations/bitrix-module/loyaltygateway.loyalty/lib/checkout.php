<?php
namespace Loyaltygateway\Loyalty;

use Bitrix\Main\Localization\Loc;
use Bitrix\Sale\Order;

Loc::loadMessages(__FILE__);

/**
 * Points at checkout. The customer's choice lives in the order property LOYALTY_POINTS; the
 * gateway's calculation fills LOYALTY_DISCOUNT (what the points pay, in roubles), LOYALTY_ACCRUE
 * (points the order will earn) and trims the choice to what may be paid. Basket prices are left
 * as the shop set them: the gateway takes points off the price it is sent, so changing them
 * here would count the points twice.
 */
final class Checkout
{
    /** @var array<string, array> the last calculation per order (object hash), for templates */
    private static array $last = [];

    public static function calculate(Order $order): ?array
    {
        $cart = Snapshot::cart($order);
        if ($cart['lines'] === []) {
            return null;
        }
        $reply = Gateway::ask('OnBeforeSaleOrderFinalAction', $cart);
        if ($reply->outcome === Reply::REFUSED && $cart['points_to_spend'] > 0) {
            // More points than the card has or the order may take: price it without, trim below.
            $cart['points_to_spend'] = 0;
            $reply = Gateway::ask('OnBeforeSaleOrderFinalAction', $cart);
            $cart['points_to_spend'] = Snapshot::points($order);
        }
        if (!$reply->accepted()) {
            // The gateway cannot price the cart now: the order goes on without points.
            Orders::setProperty($order, Config::property('discount'), '0.00');
            Orders::setProperty($order, Config::property('accrue'), '0');
            return null;
        }
        $result = $reply->result;
        $available = (int)($result['balance']['available'] ?? 0);
        $spend = min($cart['points_to_spend'], (int)($result['max_points_payable'] ?? 0), $available);
        if ($spend !== $cart['points_to_spend']) {
            Orders::setProperty($order, Config::property('points'), (string)$spend);
            if ($spend > 0) {
                $cart['points_to_spend'] = $spend;
                $again = Gateway::ask('OnBeforeSaleOrderFinalAction', $cart);
                $result = $again->accepted() ? $again->result : $result;
            }
        }
        $total = 0.0;
        foreach ($result['lines'] ?? [] as $line) {
            $total += (float)$line['amount'] - (float)$line['discount'];
        }
        $discount = $spend > 0 ? max(0.0, $total - (float)($result['amount_payable'] ?? $total)) : 0.0;
        Orders::setProperty($order, Config::property('discount'), Snapshot::money($discount));
        Orders::setProperty($order, Config::property('accrue'), (string)(int)($result['points_to_accrue'] ?? 0));
        self::$last[spl_object_hash($order)] = $result;
        return $result;
    }

    public static function last(Order $order): ?array
    {
        return self::$last[spl_object_hash($order)] ?? null;
    }

    /** Before a new order is saved: null if its points may be spent, the customer's message if not. */
    public static function check(Order $order): ?string
    {
        $points = Snapshot::points($order);
        if ($points === 0) {
            return null;
        }
        $cart = Snapshot::cart($order);
        $reply = Gateway::ask('OnBeforeSaleOrderFinalAction', $cart);
        if (!$reply->accepted()) {
            return $reply->outcome === Reply::RETRY
                ? Loc::getMessage('LOYALTYGATEWAY_UNAVAILABLE')
                : Loc::getMessage('LOYALTYGATEWAY_REFUSED', ['#MESSAGE#' => $reply->message]);
        }
        $available = (int)($reply->result['balance']['available'] ?? 0);
        $max = (int)($reply->result['max_points_payable'] ?? 0);
        if ($points > $max || $points > $available) {
            return Loc::getMessage('LOYALTYGATEWAY_TOO_MANY_POINTS', ['#MAX#' => (string)min($max, $available)]);
        }
        return null;
    }

    /** The checkout hold of a new order (keyed by the order: a repeat returns the same hold). */
    public static function hold(Order $order): Reply
    {
        $customer = Customers::of($order);
        $points = Snapshot::points($order);
        if ($points === 0 || count($customer) <= 1) {
            return new Reply(Reply::ACCEPTED, null, ['hold' => null]);
        }
        return Gateway::ask('OnSaleOrderBeforeSaved', [
            'order_id' => Snapshot::orderId($order),
            'customer' => $customer,
            'points_to_spend' => $points,
        ]);
    }
}
