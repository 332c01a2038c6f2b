<?php
namespace Loyaltygateway\Loyalty;

/**
 * What became of one delivery: accepted (with the gateway's `result`), refused for good (a
 * stable error code the shop must act on), or not delivered (try again later).
 */
final class Reply
{
    public const ACCEPTED = 'accepted';
    public const REFUSED = 'refused';
    public const RETRY = 'retry';

    public string $outcome;
    public ?int $status;
    public array $result;
    public string $code;
    public string $message;

    public function __construct(string $outcome, ?int $status, array $result = [], string $code = '', string $message = '')
    {
        $this->outcome = $outcome;
        $this->status = $status;
        $this->result = $result;
        $this->code = $code;
        $this->message = $message;
    }

    public function accepted(): bool
    {
        return $this->outcome === self::ACCEPTED;
    }

    /**
     * The gateway's answer to an HTTP exchange. Codes that can succeed later are retried:
     * no answer, 5xx, 429, 409 idempotency_in_flight, 401 (a wrong secret or a skewed clock is
     * fixed by the shop; the event waits), 404 customer_not_found (the user may register).
     */
    public static function of(?int $status, ?string $body): self
    {
        if ($status === null || $status === 0) {
            return new self(self::RETRY, null, [], 'no_answer', 'the gateway did not answer');
        }
        $decoded = null;
        if ($body !== null && $body !== '') {
            $decoded = json_decode($body, true);
        }
        if ($status === 200 && is_array($decoded) && array_key_exists('result', $decoded)) {
            return new self(self::ACCEPTED, $status, (array)$decoded['result']);
        }
        $error = is_array($decoded) && isset($decoded['error']) && is_array($decoded['error']) ? $decoded['error'] : [];
        $code = (string)($error['code'] ?? ('http_' . $status));
        $message = (string)($error['message'] ?? '');
        $later = $status >= 500 || in_array($status, [401, 408, 425, 429], true)
            || in_array($code, ['idempotency_in_flight', 'customer_not_found', 'card_not_found'], true);
        return new self($later ? self::RETRY : self::REFUSED, $status, [], $code, $message);
    }
}
