<?php
defined('B_PROLOG_INCLUDED') && B_PROLOG_INCLUDED === true || die();
/** @var array $arResult */
?>
<div class="loyalty-balance">
<?php if (!$arResult['AUTHORIZED']): ?>
    <p><?= GetMessage('LOYALTYGATEWAY_BALANCE_SIGN_IN') ?></p>
<?php elseif ($arResult['CARD_NUMBER'] === ''): ?>
    <p><?= GetMessage('LOYALTYGATEWAY_BALANCE_NO_CARD') ?></p>
<?php elseif ($arResult['BALANCE'] === null): ?>
    <p><?= GetMessage('LOYALTYGATEWAY_BALANCE_UNAVAILABLE') ?></p>
<?php else: $b = $arResult['BALANCE']; ?>
    <p class="loyalty-balance__card"><?= GetMessage('LOYALTYGATEWAY_BALANCE_CARD') ?> <?= htmlspecialcharsbx($arResult['CARD_NUMBER']) ?></p>
    <dl>
        <dt><?= GetMessage('LOYALTYGATEWAY_BALANCE_AVAILABLE') ?></dt><dd data-points="available"><?= (int)$b['available'] ?></dd>
        <dt><?= GetMessage('LOYALTYGATEWAY_BALANCE_HELD') ?></dt><dd data-points="held"><?= (int)$b['held'] ?></dd>
        <dt><?= GetMessage('LOYALTYGATEWAY_BALANCE_PENDING') ?></dt><dd data-points="pending"><?= (int)$b['pending'] ?></dd>
    </dl>
    <?php foreach ($b['expiring'] ?? [] as $lot): ?>
        <p class="loyalty-balance__expiring"><?= GetMessage('LOYALTYGATEWAY_BALANCE_EXPIRING', [
            '#POINTS#' => (int)$lot['points'], '#DATE#' => htmlspecialcharsbx(substr((string)$lot['expires_at'], 0, 10)),
        ]) ?></p>
    <?php endforeach; ?>
<?php endif; ?>
</div>
