<?php
/**
 * A minimal stand-in of the Bitrix kernel classes the module touches (the `main` module), written
 * from Bitrix's public API — signatures and behaviour as documented and as in the public mirror
 * avshatalov48/bitrix-core-business:
 *   modules/main/lib/eventmanager.php   (registerEventHandler, unRegisterEventHandler, send)
 *   modules/main/lib/event.php          (new Event($module, $type, $parameters), send, getResults)
 *   modules/main/lib/eventresult.php    (SUCCESS = 1, ERROR = 2; getType, getParameters)
 *   modules/main/lib/config/option.php  (Option::get($module, $name, $default), Option::set)
 *   modules/main/lib/web/httpclient.php (options socketTimeout/streamTimeout, setHeader,
 *                                        setAuthorization, post/get returning the body or false,
 *                                        getStatus)
 *   modules/main/lib/loader.php         (includeModule, registerAutoLoadClasses)
 *   modules/main/lib/localization/loc.php (loadMessages, getMessage with #REPLACE# pairs)
 *   modules/main/lib/security/random.php (getString)
 *   modules/main/lib/type/datetime.php, modules/main/lib/error.php
 * Only what the module calls is here; no code of Bitrix is copied. Test-only helpers are marked.
 */

namespace Bitrix\Main;

final class EventResult
{
    public const UNDEFINED = 0;
    public const SUCCESS = 1;
    public const ERROR = 2;

    private int $type;
    private $parameters;
    private ?string $moduleId;

    public function __construct($type, $parameters = null, $moduleId = null, $handler = null)
    {
        $this->type = (int)$type;
        $this->parameters = $parameters;
        $this->moduleId = $moduleId;
    }

    public function getType(): int
    {
        return $this->type;
    }

    public function getParameters()
    {
        return $this->parameters;
    }

    public function getModuleId(): ?string
    {
        return $this->moduleId;
    }
}

class Event
{
    private string $moduleId;
    private string $type;
    private array $parameters;
    private array $results = [];

    public function __construct($moduleId, $type, $parameters = [], $filter = null)
    {
        $this->moduleId = $moduleId;
        $this->type = $type;
        $this->parameters = $parameters;
    }

    public function getModuleId(): string
    {
        return $this->moduleId;
    }

    public function getEventType(): string
    {
        return $this->type;
    }

    public function getParameters(): array
    {
        return $this->parameters;
    }

    public function getParameter($key)
    {
        return $this->parameters[$key] ?? null;
    }

    public function addResult(EventResult $result): void
    {
        $this->results[] = $result;
    }

    public function getResults(): array
    {
        return $this->results;
    }

    public function send($sender = null): void
    {
        EventManager::getInstance()->send($this);
    }
}

final class EventManager
{
    private static ?EventManager $instance = null;
    /** @var array<string, array<int, array>> "module:event" => handlers */
    private array $handlers = [];

    public static function getInstance(): self
    {
        return self::$instance ??= new self();
    }

    public function registerEventHandler($fromModuleId, $eventType, $toModuleId, $toClass = '', $toMethod = '', $sort = 100, $toPath = '', $toMethodArg = [])
    {
        $key = strtolower($fromModuleId . ':' . $eventType);
        $this->handlers[$key][] = ['module' => $toModuleId, 'class' => $toClass, 'method' => $toMethod, 'sort' => $sort];
    }

    public function unRegisterEventHandler($fromModuleId, $eventType, $toModuleId, $toClass = '', $toMethod = '', $toPath = '', $toMethodArg = [])
    {
        $key = strtolower($fromModuleId . ':' . $eventType);
        $this->handlers[$key] = array_values(array_filter(
            $this->handlers[$key] ?? [],
            static fn($h) => !($h['module'] === $toModuleId && $h['class'] === $toClass && $h['method'] === $toMethod)
        ));
    }

    public function findEventHandlers($fromModuleId, $eventType, array $filter = null): array
    {
        return $this->handlers[strtolower($fromModuleId . ':' . $eventType)] ?? [];
    }

    /** D7 events: each handler gets the Event; an EventResult it returns is added to the event. */
    public function send(Event $event): void
    {
        foreach ($this->findEventHandlers($event->getModuleId(), $event->getEventType()) as $handler) {
            Loader::includeModule($handler['module']);
            $result = call_user_func([$handler['class'], $handler['method']], $event);
            if ($result instanceof EventResult) {
                $event->addResult($result);
            }
        }
    }

    /** Old-style events (ExecuteModuleEventEx): the handler gets the arguments, by reference. */
    public function sendLegacy(string $module, string $type, array &$fields): void  // test-only helper
    {
        foreach ($this->findEventHandlers($module, $type) as $handler) {
            Loader::includeModule($handler['module']);
            $callable = [$handler['class'], $handler['method']];
            $callable($fields);
        }
    }
}

class Error
{
    protected $message;
    protected $code;

    public function __construct($message, $code = 0, $customData = null)
    {
        $this->message = $message;
        $this->code = $code;
    }

    public function getMessage()
    {
        return $this->message;
    }

    public function getCode()
    {
        return $this->code;
    }
}

final class Loader
{
    /** @var array<string, string> module id => folder */
    private static array $modules = [];
    private static array $included = [];
    private static array $classes = [];

    public static function registerModulePath(string $moduleId, string $dir): void  // test-only: bitrix/modules/<id>
    {
        self::$modules[$moduleId] = rtrim($dir, '/');
    }

    public static function includeModule($moduleName): bool
    {
        if (isset(self::$included[$moduleName])) {
            return true;
        }
        if (in_array($moduleName, ['main', 'sale', 'catalog'], true)) {
            return self::$included[$moduleName] = true;
        }
        if (!isset(self::$modules[$moduleName]) || !ModuleManager::isModuleInstalled($moduleName)) {
            return false;
        }
        self::$included[$moduleName] = true;
        include_once self::$modules[$moduleName] . '/include.php';
        return true;
    }

    public static function registerAutoLoadClasses($moduleName, array $classes): void
    {
        $base = $moduleName === null ? $_SERVER['DOCUMENT_ROOT'] : self::$modules[$moduleName];
        foreach ($classes as $class => $file) {
            self::$classes[strtolower(ltrim($class, '\\'))] = $base . '/' . $file;
        }
    }

    public static function autoLoad(string $class): void
    {
        $file = self::$classes[strtolower(ltrim($class, '\\'))] ?? null;
        if ($file !== null && is_file($file)) {
            require_once $file;
        }
    }
}

spl_autoload_register([Loader::class, 'autoLoad']);

final class ModuleManager
{
    private static array $installed = [];

    public static function registerModule($moduleId): void
    {
        self::$installed[$moduleId] = true;
    }

    public static function unRegisterModule($moduleId): void
    {
        unset(self::$installed[$moduleId]);
    }

    public static function isModuleInstalled($moduleName): bool
    {
        return isset(self::$installed[$moduleName]);
    }
}

namespace Bitrix\Main\Config;

final class Option
{
    /** @var array<string, array<string, string>> */
    private static array $values = [];

    public static function get($moduleId, $name, $default = '', $siteId = false)
    {
        return self::$values[$moduleId][$name] ?? $default;
    }

    public static function set($moduleId, $name, $value = '', $siteId = '')
    {
        self::$values[$moduleId][$name] = (string)$value;
    }

    public static function delete($moduleId, array $filter = [])
    {
        if (isset($filter['name'])) {
            unset(self::$values[$moduleId][$filter['name']]);
        } else {
            unset(self::$values[$moduleId]);
        }
    }
}

namespace Bitrix\Main\Web;

class HttpClient
{
    private array $headers = [];
    private int $status = 0;
    private array $error = [];
    private float $timeout;

    public function __construct(array $options = null)
    {
        $options = $options ?? [];
        $this->timeout = (float)($options['streamTimeout'] ?? $options['socketTimeout'] ?? 30);
    }

    public function setHeader($name, $value, $replace = true)
    {
        $this->headers[$name] = $value;
        return $this;
    }

    public function setAuthorization($user, $pass)
    {
        return $this->setHeader('Authorization', 'Basic ' . base64_encode($user . ':' . $pass));
    }

    public function post($url, $postData = null, $multipart = false)
    {
        return $this->query('POST', $url, is_array($postData) ? http_build_query($postData) : $postData);
    }

    public function get($url)
    {
        return $this->query('GET', $url, null);
    }

    public function getStatus()
    {
        return $this->status;
    }

    public function getError()
    {
        return $this->error;
    }

    private function query(string $method, string $url, ?string $body)
    {
        $lines = ['Connection: close'];
        foreach ($this->headers as $name => $value) {
            $lines[] = $name . ': ' . $value;
        }
        $context = stream_context_create(['http' => [
            'method' => $method,
            'header' => implode("\r\n", $lines),
            'content' => $body ?? '',
            'timeout' => $this->timeout,
            'ignore_errors' => true,
        ]]);
        $this->status = 0;
        $answer = @file_get_contents($url, false, $context);
        if ($answer === false) {
            $this->error = ['NETWORK' => 'no answer from ' . parse_url($url, PHP_URL_HOST)];
            return false;
        }
        foreach ($http_response_header ?? [] as $line) {
            if (preg_match('#^HTTP/\S+\s+(\d{3})#', $line, $m)) {
                $this->status = (int)$m[1];  // the last status line wins (after redirects)
            }
        }
        return $answer;
    }
}

namespace Bitrix\Main\Security;

final class Random
{
    public static function getString($length, $caseSensitive = false)
    {
        $alphabet = $caseSensitive ? 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789' : 'abcdefghijklmnopqrstuvwxyz0123456789';
        $out = '';
        for ($i = 0; $i < $length; $i++) {
            $out .= $alphabet[random_int(0, strlen($alphabet) - 1)];
        }
        return $out;
    }
}

namespace Bitrix\Main\Localization;

final class Loc
{
    private static array $messages = [];

    /** lang/<LANGUAGE_ID>/<path of the file inside its module or component>, as Bitrix finds it. */
    public static function loadMessages($file): void
    {
        $file = str_replace('\\', '/', $file);
        $candidates = [];
        if (preg_match('#^(.*/loyaltygateway\.loyalty)/(.*)$#', $file, $m)) {
            $candidates[] = $m[1] . '/lang/' . LANGUAGE_ID . '/' . $m[2];
        }
        $candidates[] = dirname($file) . '/lang/' . LANGUAGE_ID . '/' . basename($file);
        foreach ($candidates as $path) {
            if (is_file($path)) {
                $MESS = [];
                include $path;
                self::$messages = array_merge(self::$messages, $MESS);
            }
        }
    }

    public static function getMessage($code, $replace = null, $language = null)
    {
        $message = self::$messages[$code] ?? '';
        return $replace ? strtr($message, $replace) : $message;
    }
}

namespace Bitrix\Main\Type;

class DateTime extends \DateTimeImmutable
{
}

namespace Bitrix\Main;

final class Context  // only what options.php reads
{
    public static function getCurrent(): self
    {
        return new self();
    }
}
