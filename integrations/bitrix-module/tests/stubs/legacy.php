<?php
/**
 * The old-API kernel pieces the module touches, from Bitrix's public API
 * (avshatalov48/bitrix-core-business):
 *   modules/main/classes/general/module.php  (CModule: MODULE_ID, DoInstall/DoUninstall)
 *   modules/main/classes/general/agent.php   (CAgent::AddAgent($name, $module, $period, $interval),
 *                                             RemoveModuleAgents)
 *   modules/main/classes/general/user.php    (CUser::GetByID()->Fetch(), Update, IsAuthorized, GetID;
 *                                             Register/Add fire OnAfterUserRegister with &$arFields)
 *   modules/main/classes/general/event_log.php (CEventLog::Add)
 *   modules/main/classes/general/component.php (CBitrixComponent::IncludeComponentTemplate)
 *   modules/main/tools.php                   (GetMessage, htmlspecialcharsbx)
 * Users, agents and the event log live in memory. No code of Bitrix is copied.
 */

abstract class CModule
{
    public $MODULE_ID;
    public $MODULE_VERSION;
    public $MODULE_VERSION_DATE;
    public $MODULE_NAME;
    public $MODULE_DESCRIPTION;
}

final class CAgent
{
    public static array $agents = [];  // test-only: name => [module, interval]

    public static function AddAgent($name, $module = '', $period = 'N', $interval = 86400, $datecheck = '', $active = 'Y', $next_exec = '', $sort = 100)
    {
        self::$agents[$name] = [$module, (int)$interval];
        return count(self::$agents);
    }

    public static function RemoveModuleAgents($module)
    {
        self::$agents = array_filter(self::$agents, static fn($a) => $a[0] !== $module);
    }

    /** Run every agent as the agent manager does: eval its call, keep the name it returns. */
    public static function runAll(): void  // test-only
    {
        foreach (self::$agents as $name => [$module]) {
            \Bitrix\Main\Loader::includeModule($module);  // the agent manager includes the agent's module first
            $next = eval('return ' . $name);
            if (!is_string($next) || $next === '') {
                unset(self::$agents[$name]);
            }
        }
    }
}

final class CEventLog
{
    public static array $records = [];  // test-only

    public static function Add($fields)
    {
        self::$records[] = $fields;
        return count(self::$records);
    }
}

class CDBResultStub
{
    private $row;

    public function __construct($row)
    {
        $this->row = $row;
    }

    public function Fetch()
    {
        $row = $this->row;
        $this->row = false;
        return $row;
    }
}

class CUser
{
    public static array $users = [];  // test-only: ID => fields
    public static ?int $current = null;  // test-only: the signed-in user

    public static function GetByID($id)
    {
        return new CDBResultStub(self::$users[(int)$id] ?? false);
    }

    public function Update($id, $fields)
    {
        if (!isset(self::$users[(int)$id])) {
            return false;
        }
        self::$users[(int)$id] = array_merge(self::$users[(int)$id], $fields);
        return true;
    }

    /** Add the user, then main's OnAfterUserRegister with the fields (and USER_ID) by reference. */
    public function Register(array $fields)  // test-only shape of CUser::Register/Add
    {
        $id = count(self::$users) + 500;
        $fields['ID'] = $id;
        self::$users[$id] = $fields;
        $fields['USER_ID'] = $id;
        \Bitrix\Main\EventManager::getInstance()->sendLegacy('main', 'OnAfterUserRegister', $fields);
        return $id;
    }

    public function IsAuthorized()
    {
        return self::$current !== null;
    }

    public function GetID()
    {
        return self::$current;
    }

    public function IsAdmin()
    {
        return true;
    }
}

class CBitrixComponent
{
    public $arParams = [];
    public $arResult = [];
    private string $folder;

    public function __construct(string $folder = '')
    {
        $this->folder = rtrim($folder, '/');
    }

    /** Run component.php in the component's scope, as $APPLICATION->IncludeComponent does. */
    public function executeComponent()  // test-only entry (Bitrix: the component runner)
    {
        \Bitrix\Main\Localization\Loc::loadMessages($this->folder . '/component.php');
        $arParams = &$this->arParams;
        $arResult = &$this->arResult;
        include $this->folder . '/component.php';
    }

    public function IncludeComponentTemplate($templatePage = '')
    {
        $template = $this->folder . '/templates/.default/template.php';
        \Bitrix\Main\Localization\Loc::loadMessages($template);
        $arParams = $this->arParams;
        $arResult = $this->arResult;
        include $template;
    }
}

function GetMessage($name, $replace = null)
{
    return \Bitrix\Main\Localization\Loc::getMessage($name, $replace);
}

function htmlspecialcharsbx($string, $flags = ENT_COMPAT, $doubleEncode = true)
{
    return htmlspecialchars((string)$string, $flags, 'UTF-8', $doubleEncode);
}
