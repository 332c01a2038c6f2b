<?php
namespace Loyaltygateway\Loyalty;

use Bitrix\Sale\Order;

/**
 * Order events: each handler only remembers the order and the event; at the end of the hit the
 * order is loaded as saved and one snapshot per order is sent (docs/bitrix.md, "When to send").
 * Returns, which Bitrix has no event for, are kept in an order property and sent from here.
 */
final class Orders
{
    /** @var array<int, string> order ID => the last event that touched it in this hit */
    private static array $touched = [];
    private static bool $flushRegistered = false;

    public static function remember(Order $order, string $event): void
    {
        if (!Config::sends('orders') || !$order->getId()) {
            return;
        }
        self::$touched[(int)$order->getId()] = $event;
        if (!self::$flushRegistered) {
            self::$flushRegistered = true;
            register_shutdown_function([self::class, 'flush']);
        }
    }

    /** Send one snapshot per remembered order (or queue it). Returns the replies by order ID. */
    public static function flush(): array
    {
        $replies = [];
        $touched = self::$touched;
        self::$touched = [];
        foreach ($touched as $id => $event) {
            $order = Order::load($id);
            if ($order === null) {
                continue;
            }
            $data = Snapshot::order($order);
            if (!isset($data['customer']['card_number']) && !isset($data['customer']['phone']) && !isset($data['customer']['email'])) {
                continue;  // nobody to credit: not a loyalty order
            }
            $replies[$id] = Gateway::send($event, $data);
        }
        return $replies;
    }

    public static function property(Order $order, string $code): string
    {
        $value = $order->getPropertyCollection()->getItemByOrderPropertyCode($code);
        return $value ? (string)$value->getValue() : '';
    }

    public static function setProperty(Order $order, string $code, string $value): void
    {
        $item = $order->getPropertyCollection()->getItemByOrderPropertyCode($code);
        if ($item) {
            $item->setValue($value);
        }
    }

    public static function returns(Order $order): array
    {
        $stored = json_decode(self::property($order, Config::property('returns')) ?: '[]', true);
        return is_array($stored) ? array_values($stored) : [];
    }

    /**
     * Record goods the customer brought back and tell the gateway (`OrderReturned`).
     * $lines: [basket item ID => quantity returned by this return]. A return id is recorded once.
     */
    public static function recordReturn(Order $order, string $returnId, array $lines, ?\DateTimeInterface $at = null): Reply
    {
        $returns = self::returns($order);
        if (!in_array($returnId, array_column($returns, 'return_id'), true)) {
            $returnLines = [];
            foreach ($lines as $lineId => $quantity) {
                $returnLines[] = ['line_id' => (string)$lineId, 'quantity' => Snapshot::quantity($quantity)];
            }
            $returns[] = ['return_id' => $returnId, 'returned_at' => ($at ?? new \DateTimeImmutable())->format('c'), 'lines' => $returnLines];
            self::setProperty($order, Config::property('returns'), json_encode($returns, JSON_UNESCAPED_UNICODE));
            $order->save();  // a new VERSION: the snapshot below is newer than any before
        }
        unset(self::$touched[(int)$order->getId()]);
        return Gateway::send('OrderReturned', Snapshot::order($order));
    }
}
