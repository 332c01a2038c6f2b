<?php
use Bitrix\Main\EventManager;
use Bitrix\Main\Localization\Loc;
use Bitrix\Main\ModuleManager;

Loc::loadMessages(__FILE__);

/**
 * Installs the loyalty gateway module: registers it, its event handlers and the queue agent,
 * and copies the personal-account component to /bitrix/components/loyaltygateway/.
 */
class loyaltygateway_loyalty extends CModule
{
    public $MODULE_ID = 'loyaltygateway.loyalty';
    public $MODULE_VERSION;
    public $MODULE_VERSION_DATE;
    public $MODULE_NAME;
    public $MODULE_DESCRIPTION;
    public $PARTNER_NAME;
    public $PARTNER_URI;

    private const AGENT = '\\Loyaltygateway\\Loyalty\\Agent::run();';

    public function __construct()
    {
        $arModuleVersion = [];
        include __DIR__ . '/version.php';
        $this->MODULE_VERSION = $arModuleVersion['VERSION'];
        $this->MODULE_VERSION_DATE = $arModuleVersion['VERSION_DATE'];
        $this->MODULE_NAME = Loc::getMessage('LOYALTYGATEWAY_MODULE_NAME');
        $this->MODULE_DESCRIPTION = Loc::getMessage('LOYALTYGATEWAY_MODULE_DESCRIPTION');
        $this->PARTNER_NAME = Loc::getMessage('LOYALTYGATEWAY_PARTNER_NAME');
        $this->PARTNER_URI = 'https://github.com/';
    }

    /** The handler table, read from the module's own class (one list for install and uninstall). */
    private function handlers(): array
    {
        require_once __DIR__ . '/../lib/eventhandlers.php';
        return \Loyaltygateway\Loyalty\EventHandlers::HANDLERS;
    }

    public function DoInstall()
    {
        ModuleManager::registerModule($this->MODULE_ID);
        $this->InstallEvents();
        $this->InstallFiles();
        \CAgent::AddAgent(self::AGENT, $this->MODULE_ID, 'N', 60);
        return true;
    }

    public function DoUninstall()
    {
        \CAgent::RemoveModuleAgents($this->MODULE_ID);
        $this->UnInstallEvents();
        $this->UnInstallFiles();
        ModuleManager::unRegisterModule($this->MODULE_ID);
        return true;
    }

    public function InstallEvents()
    {
        $events = EventManager::getInstance();
        foreach ($this->handlers() as [$module, $event, $method]) {
            $events->registerEventHandler(
                $module, $event, $this->MODULE_ID, '\\Loyaltygateway\\Loyalty\\EventHandlers', $method
            );
        }
        return true;
    }

    public function UnInstallEvents()
    {
        $events = EventManager::getInstance();
        foreach ($this->handlers() as [$module, $event, $method]) {
            $events->unRegisterEventHandler(
                $module, $event, $this->MODULE_ID, '\\Loyaltygateway\\Loyalty\\EventHandlers', $method
            );
        }
        return true;
    }

    public function InstallFiles()
    {
        $root = $_SERVER['DOCUMENT_ROOT'] ?? '';
        if ($root !== '' && function_exists('CopyDirFiles')) {
            CopyDirFiles(__DIR__ . '/components', $root . '/bitrix/components', true, true);
        }
        return true;
    }

    public function UnInstallFiles()
    {
        $root = $_SERVER['DOCUMENT_ROOT'] ?? '';
        if ($root !== '' && function_exists('DeleteDirFilesEx')) {
            DeleteDirFilesEx('/bitrix/components/loyaltygateway/loyalty.balance');
        }
        return true;
    }
}
