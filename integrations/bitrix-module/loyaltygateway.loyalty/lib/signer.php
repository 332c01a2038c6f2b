<?php
namespace Loyaltygateway\Loyalty;

/**
 * The signature the gateway checks (docs/bitrix.md, "Signing"):
 * X-Bitrix-Signature: sha256=HMAC-SHA256(secret, "<timestamp>.<exact body bytes>").
 */
final class Signer
{
    public static function headers(string $secret, string $body, ?int $now = null): array
    {
        $timestamp = (string)($now ?? time());
        return [
            'Content-Type' => 'application/json',
            'X-Bitrix-Timestamp' => $timestamp,
            'X-Bitrix-Signature' => 'sha256=' . hash_hmac('sha256', $timestamp . '.' . $body, $secret),
        ];
    }
}
