<?php
/**
 * A minimal stand-in of the `sale` module objects the loyalty module reads, from Bitrix's public
 * API (avshatalov48/bitrix-core-business):
 *   modules/sale/lib/order.php, orderbase.php  (Order::load/create, getId, getField('ACCOUNT_NUMBER'|'VERSION'|
 *       'STATUS_ID'), isNew, isPaid, isCanceled, getUserId, getDateInsert, getBasket,
 *       getShipmentCollection, getPropertyCollection, doFinalAction, save; the events
 *       OnBeforeSaleOrderFinalAction, OnSaleOrderBeforeSaved, OnSaleOrderSaved (ENTITY, IS_NEW),
 *       OnSaleOrderPaid, OnSaleOrderCanceled, OnSaleStatusOrderChange sent by save)
 *   modules/sale/lib/basketitembase.php        (getId, getField('PRODUCT_XML_ID'|'PRODUCT_ID'|'NAME'), getQuantity,
 *       getPrice, getFinalPrice)
 *   modules/sale/lib/shipment.php, shipmentitem.php (isSystem, getField('DEDUCTED'|'DATE_DEDUCTED'),
 *       getShipmentItemCollection, getBasketId, getQuantity, getCollection()->getOrder(); OnShipmentDeducted)
 *   modules/sale/lib/propertyvaluecollectionbase.php (getItemByOrderPropertyCode, getPhone, getUserEmail)
 *   modules/sale/lib/resulterror.php
 * The orders live in memory (one PHP process is one test scenario); IDs and VERSION grow as a
 * real save makes them grow. No code of Bitrix is copied.
 */

namespace Bitrix\Sale;

use Bitrix\Main\Event;
use Bitrix\Main\EventResult;
use Bitrix\Main\Type\DateTime;

class ResultError extends \Bitrix\Main\Error
{
}

class Result
{
    private array $errors = [];

    public function addError(\Bitrix\Main\Error $error): void
    {
        $this->errors[] = $error;
    }

    public function isSuccess(): bool
    {
        return $this->errors === [];
    }

    public function getErrorMessages(): array
    {
        return array_map(static fn($e) => $e->getMessage(), $this->errors);
    }
}

class PropertyValue
{
    private string $code;
    private $value;

    public function __construct(string $code, $value = '')
    {
        $this->code = $code;
        $this->value = $value;
    }

    public function getValue()
    {
        return $this->value;
    }

    public function setValue($value)
    {
        $this->value = $value;
    }

    public function getField($name)
    {
        return $name === 'CODE' ? $this->code : null;
    }
}

class PropertyValueCollection implements \IteratorAggregate
{
    /** @var array<string, PropertyValue> */
    private array $items = [];

    public function add(string $code, $value = ''): PropertyValue  // test-only: the shop's order properties
    {
        return $this->items[$code] = new PropertyValue($code, $value);
    }

    public function getItemByOrderPropertyCode($code)
    {
        return $this->items[$code] ?? null;
    }

    public function getPhone()
    {
        return $this->items['PHONE'] ?? null;
    }

    public function getUserEmail()
    {
        return $this->items['EMAIL'] ?? null;
    }

    public function getIterator(): \Iterator
    {
        return new \ArrayIterator(array_values($this->items));
    }

    public function values(): array  // test-only
    {
        return array_map(static fn($p) => $p->getValue(), $this->items);
    }
}

class BasketItem
{
    private static int $nextId = 300;
    private array $fields;

    public function __construct(array $fields)
    {
        $this->fields = $fields + ['ID' => ++self::$nextId];
    }

    public function getId()
    {
        return $this->fields['ID'];
    }

    public function getField($name)
    {
        return $this->fields[$name] ?? null;
    }

    public function getQuantity()
    {
        return (float)$this->fields['QUANTITY'];
    }

    public function getPrice()
    {
        return (float)$this->fields['PRICE'];
    }

    public function getFinalPrice()
    {
        return round($this->getPrice() * $this->getQuantity(), 2);
    }
}

class Basket implements \IteratorAggregate
{
    /** @var BasketItem[] */
    private array $items = [];

    public function add(array $fields): BasketItem  // test-only (Bitrix: createItem + setFields)
    {
        return $this->items[] = new BasketItem($fields);
    }

    public function getIterator(): \Iterator
    {
        return new \ArrayIterator($this->items);
    }

    public function byProduct(string $xmlId): BasketItem  // test-only
    {
        foreach ($this->items as $item) {
            if ($item->getField('PRODUCT_XML_ID') === $xmlId) {
                return $item;
            }
        }
        throw new \OutOfBoundsException($xmlId);
    }
}

class ShipmentItem
{
    private $basketId;
    private $quantity;

    public function __construct($basketId, $quantity)
    {
        $this->basketId = $basketId;
        $this->quantity = $quantity;
    }

    public function getBasketId()
    {
        return $this->basketId;
    }

    public function getQuantity()
    {
        return (float)$this->quantity;
    }
}

class Shipment
{
    private static int $nextId = 70;
    private array $fields;
    private array $items = [];
    private ShipmentCollection $collection;

    public function __construct(ShipmentCollection $collection, bool $system = false)
    {
        $this->collection = $collection;
        $this->fields = ['ID' => ++self::$nextId, 'DEDUCTED' => 'N', 'SYSTEM' => $system ? 'Y' : 'N', 'DATE_DEDUCTED' => null];
    }

    public function getId()
    {
        return $this->fields['ID'];
    }

    public function isSystem(): bool
    {
        return $this->fields['SYSTEM'] === 'Y';
    }

    public function getField($name)
    {
        return $this->fields[$name] ?? null;
    }

    public function addItem(BasketItem $item, $quantity): void  // test-only
    {
        $this->items[] = new ShipmentItem($item->getId(), $quantity);
    }

    public function getShipmentItemCollection(): array
    {
        return $this->items;
    }

    public function getCollection(): ShipmentCollection
    {
        return $this->collection;
    }

    /** Deduct (ship) it: Bitrix sends OnShipmentDeducted when the order is saved. */
    public function setDeducted(string $at): void  // test-only (Bitrix: setField('DEDUCTED', 'Y'))
    {
        $this->fields['DEDUCTED'] = 'Y';
        $this->fields['DATE_DEDUCTED'] = new DateTime($at);
        $this->collection->getOrder()->pendEvent(new Event('sale', 'OnShipmentDeducted', ['ENTITY' => $this]));
    }
}

class ShipmentCollection implements \IteratorAggregate
{
    private Order $order;
    private array $items = [];

    public function __construct(Order $order)
    {
        $this->order = $order;
        $this->items[] = new Shipment($this, true);  // every Bitrix order has a system shipment
    }

    public function createItem(): Shipment
    {
        return $this->items[] = new Shipment($this);
    }

    public function getOrder(): Order
    {
        return $this->order;
    }

    public function getIterator(): \Iterator
    {
        return new \ArrayIterator($this->items);
    }
}

class Order
{
    private static int $nextId = 1040;
    /** @var array<int, Order> saved orders by ID */
    private static array $saved = [];

    private array $fields;
    private Basket $basket;
    private ShipmentCollection $shipments;
    private PropertyValueCollection $properties;
    private array $pending = [];

    public static function create($siteId, $userId = null, $currency = null): self
    {
        $order = new self();
        $order->fields = [
            'ID' => null, 'ACCOUNT_NUMBER' => null, 'VERSION' => 0, 'USER_ID' => $userId, 'STATUS_ID' => 'N',
            'PAYED' => 'N', 'CANCELED' => 'N', 'DATE_INSERT' => new DateTime('2024-05-20T12:00:00+03:00'),
        ];
        $order->basket = new Basket();
        $order->shipments = new ShipmentCollection($order);
        $order->properties = new PropertyValueCollection();
        return $order;
    }

    public static function load($id): ?self
    {
        return self::$saved[(int)$id] ?? null;
    }

    public function getId()
    {
        return $this->fields['ID'];
    }

    public function getField($name)
    {
        return $this->fields[$name] ?? null;
    }

    public function setField($name, $value): void
    {
        $old = $this->fields[$name] ?? null;
        $this->fields[$name] = $value;
        if ($name === 'STATUS_ID' && $old !== $value) {
            $this->pendEvent(new Event('sale', 'OnSaleStatusOrderChange', ['ENTITY' => $this, 'VALUE' => $value, 'OLD_VALUE' => $old]));
        }
    }

    public function isNew(): bool
    {
        return $this->fields['ID'] === null;
    }

    public function isPaid(): bool
    {
        return $this->fields['PAYED'] === 'Y';
    }

    public function isCanceled(): bool
    {
        return $this->fields['CANCELED'] === 'Y';
    }

    public function getUserId()
    {
        return $this->fields['USER_ID'];
    }

    public function getDateInsert()
    {
        return $this->fields['DATE_INSERT'];
    }

    public function getBasket(): Basket
    {
        return $this->basket;
    }

    public function getShipmentCollection(): ShipmentCollection
    {
        return $this->shipments;
    }

    public function getPropertyCollection(): PropertyValueCollection
    {
        return $this->properties;
    }

    public function setPaid(bool $paid): void  // test-only (Bitrix: the payment's setPaid('Y'))
    {
        $this->fields['PAYED'] = $paid ? 'Y' : 'N';
        $this->pendEvent(new Event('sale', 'OnSaleOrderPaid', ['ENTITY' => $this]));
    }

    public function setCanceled(bool $canceled): void  // test-only (Bitrix: setField('CANCELED', 'Y'))
    {
        $this->fields['CANCELED'] = $canceled ? 'Y' : 'N';
        $this->pendEvent(new Event('sale', 'OnSaleOrderCanceled', ['ENTITY' => $this]));
    }

    public function pendEvent(Event $event): void
    {
        $this->pending[] = $event;
    }

    /** The cart's final recalculation: OnBeforeSaleOrderFinalAction, as the checkout runs it. */
    public function doFinalAction($hasMeaningfulField = false): Result
    {
        $result = new Result();
        (new Event('sale', 'OnBeforeSaleOrderFinalAction', ['ENTITY' => $this]))->send();
        return $result;
    }

    /**
     * OnSaleOrderBeforeSaved (an ERROR result stops the save), then the row is written (a new
     * order gets its ID and ACCOUNT_NUMBER; VERSION grows), then OnSaleOrderSaved and the
     * events pooled while the order changed.
     */
    public function save(): Result
    {
        $result = new Result();
        $before = new Event('sale', 'OnSaleOrderBeforeSaved', ['ENTITY' => $this, 'VALUES' => []]);
        $before->send();
        foreach ($before->getResults() as $answer) {
            if ($answer->getType() === EventResult::ERROR) {
                $result->addError($answer->getParameters());
            }
        }
        if (!$result->isSuccess()) {
            return $result;
        }
        $isNew = $this->isNew();
        if ($isNew) {
            $this->fields['ID'] = ++self::$nextId;
            $this->fields['ACCOUNT_NUMBER'] = (string)$this->fields['ID'];
        }
        $this->fields['VERSION']++;
        self::$saved[$this->fields['ID']] = $this;
        (new Event('sale', 'OnSaleOrderSaved', ['ENTITY' => $this, 'IS_NEW' => $isNew, 'VALUES' => []]))->send();
        $pending = $this->pending;
        $this->pending = [];
        foreach ($pending as $event) {
            $event->send();
        }
        return $result;
    }
}
