<?php
namespace Loyaltygateway\Loyalty;

use Bitrix\Main\Security\Random;
use Bitrix\Main\Web\HttpClient;

/**
 * Signed site events to POST /bitrix/site/events, and the JSON API reads the personal account
 * needs. Every event gets an id of its own once, in its envelope; a retry sends the same bytes
 * under a new timestamp, so the gateway answers a repeat with its first reply.
 */
final class Gateway
{
    /** The exact body of a new event (JSON: Unicode and slashes unescaped, as the gateway signs bytes). */
    public static function envelope(string $event, array $data): string
    {
        return json_encode(
            ['event_id' => Random::getString(32), 'event' => $event, 'data' => $data],
            JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES | JSON_THROW_ON_ERROR
        );
    }

    /** Deliver one envelope now. */
    public static function deliver(string $body): Reply
    {
        $url = Config::gatewayUrl();
        if ($url === '' || Config::secret() === '') {
            return new Reply(Reply::RETRY, null, [], 'not_configured', 'set the gateway address and the site secret');
        }
        $http = new HttpClient([
            'socketTimeout' => Config::timeout(),
            'streamTimeout' => Config::timeout(),
            'disableSslVerification' => false,
        ]);
        foreach (Signer::headers(Config::secret(), $body) as $name => $value) {
            $http->setHeader($name, $value);
        }
        $answer = $http->post($url . '/bitrix/site/events', $body);
        if ($answer === false) {
            return Reply::of(null, null);
        }
        return Reply::of((int)$http->getStatus(), (string)$answer);
    }

    /**
     * Send now; if the gateway cannot take it now, keep it in the queue for the agent — so an
     * order saved while the gateway is down is not lost. A refusal for good is kept too, in the
     * queue's `failed` folder, for the administrator.
     */
    public static function send(string $event, array $data): Reply
    {
        $body = self::envelope($event, $data);
        $reply = self::deliver($body);
        if ($reply->outcome === Reply::RETRY) {
            Queue::default()->put($body, $reply);
        } elseif ($reply->outcome === Reply::REFUSED) {
            Queue::default()->fail($body, $reply);
        } else {
            self::afterAccepted($event, $data, $reply->result);
        }
        return $reply;
    }

    /** Send now and only now (the cart, the checkout hold): the customer is waiting for the answer. */
    public static function ask(string $event, array $data): Reply
    {
        return self::deliver(self::envelope($event, $data));
    }

    /** What the shop keeps of an accepted event (the new customer's card on the user). */
    public static function afterAccepted(string $event, array $data, array $result): void
    {
        if ($event === 'OnAfterUserRegister' && !empty($result['cards'][0]['card_number'])) {
            Customers::rememberCard((int)$data['user_id'], (string)$result['cards'][0]['card_number']);
        }
    }

    /** GET /api/v1/cards/{number}/balance with the site client's credentials; null when unavailable. */
    public static function balance(string $cardNumber): ?array
    {
        $url = Config::gatewayUrl();
        if ($url === '' || $cardNumber === '') {
            return null;
        }
        $http = new HttpClient(['socketTimeout' => Config::timeout(), 'streamTimeout' => Config::timeout()]);
        $http->setAuthorization(Config::apiLogin(), Config::apiPassword());
        $answer = $http->get($url . '/api/v1/cards/' . rawurlencode($cardNumber) . '/balance');
        if ($answer === false || (int)$http->getStatus() !== 200) {
            return null;
        }
        $decoded = json_decode((string)$answer, true);
        return is_array($decoded) ? $decoded : null;
    }
}
