<?php
namespace Loyaltygateway\Loyalty;

use Bitrix\Main\Config\Option;

/**
 * The module's settings (options.php writes them; b_option stores them).
 */
final class Config
{
    public const MODULE_ID = 'loyaltygateway.loyalty';

    public static function gatewayUrl(): string
    {
        return rtrim((string)Option::get(self::MODULE_ID, 'gateway_url', ''), '/');
    }

    public static function secret(): string
    {
        return (string)Option::get(self::MODULE_ID, 'secret', '');
    }

    /** Basic credentials of the `site` client, for the JSON API (the balance in the personal account). */
    public static function apiLogin(): string
    {
        return (string)Option::get(self::MODULE_ID, 'api_login', '');
    }

    public static function apiPassword(): string
    {
        return (string)Option::get(self::MODULE_ID, 'api_password', '');
    }

    public static function timeout(): int
    {
        return max(1, (int)Option::get(self::MODULE_ID, 'timeout', '10'));
    }

    /** `Y` unless switched off: which events the module sends. */
    public static function sends(string $what): bool
    {
        return Option::get(self::MODULE_ID, 'send_' . $what, 'Y') === 'Y';
    }

    /** ACCOUNT_NUMBER (what 1C and the customer see) or ID: never change it on a live shop. */
    public static function orderIdField(): string
    {
        return Option::get(self::MODULE_ID, 'order_id_field', 'ACCOUNT_NUMBER') === 'ID' ? 'ID' : 'ACCOUNT_NUMBER';
    }

    /** The user field that keeps the customer's loyalty card number. */
    public static function cardField(): string
    {
        return (string)Option::get(self::MODULE_ID, 'card_field', 'UF_LOYALTY_CARD');
    }

    /** The user field that keeps the referral code a new user came with (the referrer's card or phone). */
    public static function referrerField(): string
    {
        return (string)Option::get(self::MODULE_ID, 'referrer_field', 'UF_LOYALTY_REFERRER');
    }

    /** Order property codes: points the customer pays with, their worth, points to earn, returns. */
    public static function property(string $what): string
    {
        $defaults = [
            'points' => 'LOYALTY_POINTS',
            'discount' => 'LOYALTY_DISCOUNT',
            'accrue' => 'LOYALTY_ACCRUE',
            'returns' => 'LOYALTY_RETURNS',
        ];
        return (string)Option::get(self::MODULE_ID, 'property_' . $what, $defaults[$what]);
    }

    /** The queue of events the gateway has not accepted yet (outside the web root is best). */
    public static function queueDir(): string
    {
        $default = rtrim((string)($_SERVER['DOCUMENT_ROOT'] ?? sys_get_temp_dir()), '/') . '/upload/loyaltygateway/queue';
        return rtrim((string)Option::get(self::MODULE_ID, 'queue_dir', $default), '/');
    }

    public static function maxAttempts(): int
    {
        return max(1, (int)Option::get(self::MODULE_ID, 'max_attempts', '200'));
    }
}
