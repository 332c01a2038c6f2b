<?php
/**
 * Loads the stand-in kernel and installs the module the way the Marketplace installer does
 * (include install/index.php, new loyaltygateway_loyalty(), DoInstall()). Options come from
 * the environment variable LOYALTY_OPTIONS (JSON), so a test points the module at its gateway.
 */
error_reporting(E_ALL);
ini_set('display_errors', 'stderr');
set_error_handler(static function ($severity, $message, $file, $line) {
    if (!(error_reporting() & $severity)) {
        return false;  // silenced with @ (as the module does where no answer is an answer)
    }
    throw new ErrorException($message, 0, $severity, $file, $line);  // a notice is a test failure
});

define('B_PROLOG_INCLUDED', true);
define('LANGUAGE_ID', getenv('LOYALTY_LANGUAGE') ?: 'ru');
$_SERVER['DOCUMENT_ROOT'] = getenv('LOYALTY_DOCUMENT_ROOT') ?: sys_get_temp_dir();

require __DIR__ . '/main.php';
require __DIR__ . '/sale.php';
require __DIR__ . '/legacy.php';

const LOYALTY_MODULE_DIR = __DIR__ . '/../../loyaltygateway.loyalty';

$GLOBALS['USER'] = new CUser();  // Bitrix's global current-user object

\Bitrix\Main\Loader::registerModulePath('loyaltygateway.loyalty', LOYALTY_MODULE_DIR);
foreach (json_decode(getenv('LOYALTY_OPTIONS') ?: '{}', true) as $name => $value) {
    \Bitrix\Main\Config\Option::set('loyaltygateway.loyalty', $name, $value);
}
require LOYALTY_MODULE_DIR . '/install/index.php';
(new loyaltygateway_loyalty())->DoInstall();

/** One JSON line on stdout per checkpoint: what the test reads back. */
function report(string $name, $value): void
{
    echo json_encode(['name' => $name, 'value' => $value], JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES), "\n";
}
