<?php
/**
 * Settings page (Настройки -> Настройки модулей -> Шлюз лояльности): the gateway's address, the
 * site secret shared with its `bitrix.site.secret`, the site client's API login, what to send,
 * and the queue of events the gateway has not taken yet.
 */
use Bitrix\Main\Config\Option;
use Bitrix\Main\Localization\Loc;
use Loyaltygateway\Loyalty\Config;
use Loyaltygateway\Loyalty\Queue;

defined('B_PROLOG_INCLUDED') && B_PROLOG_INCLUDED === true || die();
Loc::loadMessages(__FILE__);
\Bitrix\Main\Loader::includeModule('loyaltygateway.loyalty');

global $APPLICATION, $USER;
if (!$USER->IsAdmin()) {
    return;
}
$moduleId = Config::MODULE_ID;
$fields = [
    ['gateway_url', 'text', 'https://loyalty.example.ru'],
    ['secret', 'password', ''],
    ['api_login', 'text', 'site'],
    ['api_password', 'password', ''],
    ['timeout', 'text', '10'],
    ['order_id_field', ['ACCOUNT_NUMBER' => 'ACCOUNT_NUMBER', 'ID' => 'ID'], 'ACCOUNT_NUMBER'],
    ['card_field', 'text', 'UF_LOYALTY_CARD'],
    ['referrer_field', 'text', 'UF_LOYALTY_REFERRER'],
    ['property_points', 'text', 'LOYALTY_POINTS'],
    ['property_discount', 'text', 'LOYALTY_DISCOUNT'],
    ['property_accrue', 'text', 'LOYALTY_ACCRUE'],
    ['property_returns', 'text', 'LOYALTY_RETURNS'],
    ['send_cart', 'checkbox', 'Y'],
    ['send_orders', 'checkbox', 'Y'],
    ['send_users', 'checkbox', 'Y'],
    ['queue_dir', 'text', Config::queueDir()],
    ['max_attempts', 'text', '200'],
];

$request = \Bitrix\Main\Context::getCurrent()->getRequest();
if ($request->isPost() && check_bitrix_sessid()) {
    if ($request->getPost('retry_queue') !== null) {
        [$sent, $left] = Queue::default()->process(1000, true);
        CAdminMessage::ShowNote(Loc::getMessage('LOYALTYGATEWAY_QUEUE_RETRIED', ['#SENT#' => $sent, '#LEFT#' => $left]));
    } else {
        foreach ($fields as [$name, $type]) {
            $value = $request->getPost($name);
            if ($type === 'checkbox') {
                $value = $value === 'Y' ? 'Y' : 'N';
            }
            if ($type === 'password' && ($value === null || $value === '')) {
                continue;  // an empty password field keeps the stored secret
            }
            Option::set($moduleId, $name, (string)$value);
        }
    }
}
$queue = Queue::default();
?>
<form method="post" action="<?= htmlspecialcharsbx($APPLICATION->GetCurPage()) ?>?mid=<?= urlencode($moduleId) ?>&lang=<?= LANGUAGE_ID ?>">
    <?= bitrix_sessid_post() ?>
    <table class="adm-detail-content-table edit-table">
    <?php foreach ($fields as [$name, $type, $default]):
        $value = Option::get($moduleId, $name, $default); ?>
        <tr>
            <td width="40%"><label for="<?= $name ?>"><?= Loc::getMessage('LOYALTYGATEWAY_OPT_' . strtoupper($name)) ?></label></td>
            <td width="60%">
            <?php if (is_array($type)): ?>
                <select name="<?= $name ?>" id="<?= $name ?>">
                <?php foreach ($type as $key => $label): ?>
                    <option value="<?= htmlspecialcharsbx($key) ?>"<?= $key === $value ? ' selected' : '' ?>><?= htmlspecialcharsbx($label) ?></option>
                <?php endforeach; ?>
                </select>
            <?php elseif ($type === 'checkbox'): ?>
                <input type="checkbox" name="<?= $name ?>" id="<?= $name ?>" value="Y"<?= $value === 'Y' ? ' checked' : '' ?>>
            <?php elseif ($type === 'password'): ?>
                <input type="password" name="<?= $name ?>" id="<?= $name ?>" value="" autocomplete="new-password"
                       placeholder="<?= $value !== '' ? '••••••••' : '' ?>">
            <?php else: ?>
                <input type="text" size="50" name="<?= $name ?>" id="<?= $name ?>" value="<?= htmlspecialcharsbx($value) ?>">
            <?php endif; ?>
            </td>
        </tr>
    <?php endforeach; ?>
        <tr>
            <td><?= Loc::getMessage('LOYALTYGATEWAY_QUEUE') ?></td>
            <td><?= Loc::getMessage('LOYALTYGATEWAY_QUEUE_STATE', ['#PENDING#' => count($queue->pending()), '#FAILED#' => count($queue->failed())]) ?>
                <input type="submit" name="retry_queue" value="<?= Loc::getMessage('LOYALTYGATEWAY_QUEUE_RETRY') ?>"></td>
        </tr>
    </table>
    <input type="submit" class="adm-btn-save" value="<?= Loc::getMessage('LOYALTYGATEWAY_SAVE') ?>">
</form>
