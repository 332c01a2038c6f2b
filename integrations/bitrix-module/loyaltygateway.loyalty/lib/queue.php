<?php
namespace Loyaltygateway\Loyalty;

/**
 * The local queue of events the gateway has not taken yet: one JSON file per event, written to a
 * temporary name and renamed (a crash leaves a whole file or none), processed by the agent in
 * the order they were queued under an exclusive lock (one agent at a time, however many hits).
 * Files the gateway refused for good move to `failed/`.
 */
final class Queue
{
    private string $dir;

    public function __construct(string $dir)
    {
        $this->dir = rtrim($dir, '/');
    }

    public static function default(): self
    {
        return new self(Config::queueDir());
    }

    public function put(string $body, Reply $why, int $attempts = 1): string
    {
        $this->ensure($this->dir);
        $name = sprintf('%.6f', microtime(true)) . '-' . bin2hex(random_bytes(4)) . '.json';
        $record = [
            'body' => $body,
            'attempts' => $attempts,
            'next_at' => time() + self::backoff($attempts),
            'last_error' => $why->code . ($why->message !== '' ? ': ' . $why->message : ''),
        ];
        $this->write($this->dir . '/' . $name, $record);
        return $name;
    }

    public function fail(string $body, Reply $why): void
    {
        $this->ensure($this->dir . '/failed');
        $name = sprintf('%.6f', microtime(true)) . '-' . bin2hex(random_bytes(4)) . '.json';
        $this->write($this->dir . '/failed/' . $name, [
            'body' => $body,
            'status' => $why->status,
            'code' => $why->code,
            'message' => $why->message,
            'failed_at' => date('c'),
        ]);
        \CEventLog::Add([
            'SEVERITY' => 'ERROR',
            'AUDIT_TYPE_ID' => 'LOYALTY_EVENT_REFUSED',
            'MODULE_ID' => Config::MODULE_ID,
            'DESCRIPTION' => $why->code . ' ' . $why->message,
        ]);
    }

    /** Events waiting, oldest first. */
    public function pending(): array
    {
        $files = glob($this->dir . '/*.json') ?: [];
        sort($files, SORT_STRING);
        return $files;
    }

    public function failed(): array
    {
        $files = glob($this->dir . '/failed/*.json') ?: [];
        sort($files, SORT_STRING);
        return $files;
    }

    /**
     * Deliver what is due (at most $limit). Returns [delivered, still waiting, refused].
     * With $force every waiting event is tried now, whatever its back-off.
     */
    public function process(int $limit = 100, bool $force = false): array
    {
        $this->ensure($this->dir);
        $lock = fopen($this->dir . '/.lock', 'c');
        if ($lock === false || !flock($lock, LOCK_EX | LOCK_NB)) {
            return [0, count($this->pending()), 0];  // another agent is at it
        }
        $delivered = $refused = 0;
        try {
            foreach (array_slice($this->pending(), 0, $limit) as $file) {
                $record = json_decode((string)@file_get_contents($file), true);
                if (!is_array($record) || !isset($record['body'])) {
                    @rename($file, $file . '.broken');
                    continue;
                }
                if (!$force && (int)($record['next_at'] ?? 0) > time()) {
                    continue;
                }
                $reply = Gateway::deliver((string)$record['body']);
                if ($reply->accepted()) {
                    $envelope = json_decode((string)$record['body'], true);
                    Gateway::afterAccepted((string)$envelope['event'], (array)$envelope['data'], $reply->result);
                    unlink($file);
                    $delivered++;
                } elseif ($reply->outcome === Reply::REFUSED || (int)$record['attempts'] + 1 > Config::maxAttempts()) {
                    $this->fail((string)$record['body'], $reply);
                    unlink($file);
                    $refused++;
                } else {
                    $record['attempts'] = (int)$record['attempts'] + 1;
                    $record['next_at'] = time() + self::backoff((int)$record['attempts']);
                    $record['last_error'] = $reply->code;
                    $this->write($file, $record);
                }
            }
        } finally {
            flock($lock, LOCK_UN);
            fclose($lock);
        }
        return [$delivered, count($this->pending()), $refused];
    }

    /** 1, 2, 4… minutes, at most an hour. */
    public static function backoff(int $attempts): int
    {
        return min(3600, 60 * (2 ** max(0, min(6, $attempts - 1))));
    }

    private function write(string $path, array $record): void
    {
        $tmp = $path . '.tmp';
        file_put_contents($tmp, json_encode($record, JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES), LOCK_EX);
        rename($tmp, $path);
    }

    private function ensure(string $dir): void
    {
        if (!is_dir($dir) && !@mkdir($dir, 0770, true) && !is_dir($dir)) {
            throw new \RuntimeException('cannot create the loyalty queue folder ' . $dir);
        }
        // Queued events name customers (phones, e-mails): if the folder is under the web root,
        // the web server must not serve it (Apache; for nginx see the module's README).
        $guard = $this->dir . '/.htaccess';
        if (!is_file($guard)) {
            file_put_contents($guard, "Require all denied\n<IfModule !mod_authz_core.c>\nDeny from all\n</IfModule>\n");
        }
    }
}
