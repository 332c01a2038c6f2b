<?php
namespace Loyaltygateway\Loyalty;

use Bitrix\Sale\Order;

/**
 * Who the customer is, as the gateway wants it: the card kept on the user first, then the
 * order's phone and e-mail.
 */
final class Customers
{
    public static function card(int $userId): string
    {
        if ($userId <= 0) {
            return '';
        }
        $user = \CUser::GetByID($userId)->Fetch();
        return is_array($user) ? trim((string)($user[Config::cardField()] ?? '')) : '';
    }

    public static function rememberCard(int $userId, string $cardNumber): void
    {
        if ($userId > 0 && $cardNumber !== '') {
            (new \CUser())->Update($userId, [Config::cardField() => $cardNumber]);
        }
    }

    public static function of(Order $order): array
    {
        $userId = (int)$order->getUserId();
        $customer = ['user_id' => $userId > 0 ? (string)$userId : null];
        $card = self::card($userId);
        if ($card !== '') {
            $customer['card_number'] = $card;
        }
        $properties = $order->getPropertyCollection();
        $phone = $properties->getPhone();
        if ($phone && trim((string)$phone->getValue()) !== '') {
            $customer['phone'] = trim((string)$phone->getValue());
        }
        $email = $properties->getUserEmail();
        if ($email && trim((string)$email->getValue()) !== '') {
            $customer['email'] = trim((string)$email->getValue());
        }
        return array_filter($customer, static fn($v) => $v !== null);
    }

    /** OnAfterUserRegister's fields -> the gateway's new customer. */
    public static function registration(array $fields): ?array
    {
        $data = [
            'user_id' => (string)(int)($fields['USER_ID'] ?? 0),
            'phone' => trim((string)($fields['PERSONAL_PHONE'] ?? $fields['PHONE_NUMBER'] ?? '')) ?: null,
            'email' => trim((string)($fields['EMAIL'] ?? '')) ?: null,
            'name' => trim(implode(' ', array_filter([(string)($fields['NAME'] ?? ''), (string)($fields['LAST_NAME'] ?? '')]))) ?: null,
            'birth_date' => null,
            'card_number' => trim((string)($fields[Config::cardField()] ?? '')) ?: null,
            'referrer_card' => preg_replace('/[^0-9A-Za-z+]/', '', (string)($fields[Config::referrerField()] ?? '')) ?: null,
        ];
        $birthday = trim((string)($fields['PERSONAL_BIRTHDAY'] ?? ''));
        if ($birthday !== '' && preg_match('/^(\d{2})\.(\d{2})\.(\d{4})$/', $birthday, $m)) {
            $data['birth_date'] = "$m[3]-$m[2]-$m[1]";  // the site's format DD.MM.YYYY
        } elseif ($birthday !== '' && preg_match('/^\d{4}-\d{2}-\d{2}$/', $birthday)) {
            $data['birth_date'] = $birthday;
        }
        if ($data['user_id'] === '0' || $data['card_number'] !== null) {
            return null;  // a user who already has a card is a customer already
        }
        if ($data['phone'] === null && $data['email'] === null) {
            return null;
        }
        return $data;
    }
}
