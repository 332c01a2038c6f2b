<?php
namespace Loyaltygateway\Loyalty;

use Bitrix\Main\Event;
use Bitrix\Main\EventResult;
use Bitrix\Main\Localization\Loc;
use Bitrix\Sale\Order;
use Bitrix\Sale\ResultError;

Loc::loadMessages(__FILE__);

/**
 * The handlers install/index.php registers (EventManager::registerEventHandler), one per sale
 * event the gateway consumes, plus main's OnAfterUserRegister.
 */
final class EventHandlers
{
    /** Handler table: [module, event, method]; install/index.php registers exactly these. */
    public const HANDLERS = [
        ['sale', 'OnBeforeSaleOrderFinalAction', 'onBeforeSaleOrderFinalAction'],
        ['sale', 'OnSaleOrderBeforeSaved', 'onSaleOrderBeforeSaved'],
        ['sale', 'OnSaleOrderSaved', 'onSaleOrderSaved'],
        ['sale', 'OnSaleOrderPaid', 'onSaleOrderPaid'],
        ['sale', 'OnSaleStatusOrderChange', 'onSaleStatusOrderChange'],
        ['sale', 'OnSaleOrderCanceled', 'onSaleOrderCanceled'],
        ['sale', 'OnShipmentDeducted', 'onShipmentDeducted'],
        ['sale', 'OnSaleShipmentDelivery', 'onSaleShipmentDelivery'],
        ['main', 'OnAfterUserRegister', 'onAfterUserRegister'],
    ];

    /** The cart: price it with the chosen points; keep what the gateway says on the order. */
    public static function onBeforeSaleOrderFinalAction(Event $event): EventResult
    {
        $order = $event->getParameter('ENTITY');
        if ($order instanceof Order && Config::sends('cart')) {
            Checkout::calculate($order);
        }
        return new EventResult(EventResult::SUCCESS, null, 'sale');
    }

    /**
     * Before a new order is saved: make sure the chosen points can pay for it. If the gateway
     * refuses (insufficient_points, points_limit_exceeded…) or cannot answer, the save stops
     * with the customer's message; an order without points is never held up.
     */
    public static function onSaleOrderBeforeSaved(Event $event): EventResult
    {
        $order = $event->getParameter('ENTITY');
        if ($order instanceof Order && $order->isNew() && Config::sends('cart')) {
            $error = Checkout::check($order);
            if ($error !== null) {
                return new EventResult(EventResult::ERROR, new ResultError($error, 'LOYALTY_POINTS'), 'sale');
            }
        }
        return new EventResult(EventResult::SUCCESS, null, 'sale');
    }

    /** Saved: a new order first reserves its points (now it has its number), then the snapshot. */
    public static function onSaleOrderSaved(Event $event): void
    {
        $order = $event->getParameter('ENTITY');
        if (!$order instanceof Order) {
            return;
        }
        if ($event->getParameter('IS_NEW') && Config::sends('cart')) {
            Checkout::hold($order);
        }
        Orders::remember($order, 'OnSaleOrderSaved');
    }

    public static function onSaleOrderPaid(Event $event): void
    {
        self::touch($event->getParameter('ENTITY'), 'OnSaleOrderPaid');
    }

    public static function onSaleStatusOrderChange(Event $event): void
    {
        self::touch($event->getParameter('ENTITY'), 'OnSaleStatusOrderChange');
    }

    public static function onSaleOrderCanceled(Event $event): void
    {
        self::touch($event->getParameter('ENTITY'), 'OnSaleOrderCanceled');
    }

    public static function onShipmentDeducted(Event $event): void
    {
        $shipment = $event->getParameter('ENTITY');
        if ($shipment instanceof \Bitrix\Sale\Shipment) {
            self::touch($shipment->getCollection()->getOrder(), 'OnShipmentDeducted');
        }
    }

    public static function onSaleShipmentDelivery(Event $event): void
    {
        $shipment = $event->getParameter('ENTITY');
        if ($shipment instanceof \Bitrix\Sale\Shipment) {
            self::touch($shipment->getCollection()->getOrder(), 'OnSaleShipmentDelivery');
        }
    }

    /** main: a new user becomes a loyalty customer; the card number is stored on the user. */
    public static function onAfterUserRegister(array &$fields): void
    {
        if (!Config::sends('users') || (int)($fields['USER_ID'] ?? 0) <= 0) {
            return;
        }
        $data = Customers::registration($fields);
        if ($data !== null) {
            Gateway::send('OnAfterUserRegister', $data);
        }
    }

    private static function touch($order, string $event): void
    {
        if ($order instanceof Order) {
            Orders::remember($order, $event);
        }
    }
}
