<?php
/**
 * loyaltygateway:loyalty.balance — the signed-in customer's points in the personal account:
 * available, reserved, waiting for shipment, and what expires soon (GET /api/v1/cards/…/balance).
 *
 * @var CBitrixComponent $this
 * @var array $arParams
 * @var array $arResult
 */
defined('B_PROLOG_INCLUDED') && B_PROLOG_INCLUDED === true || die();

use Loyaltygateway\Loyalty\Customers;
use Loyaltygateway\Loyalty\Gateway;

global $USER;
if (!\Bitrix\Main\Loader::includeModule('loyaltygateway.loyalty')) {
    return;
}
$arResult = ['CARD_NUMBER' => '', 'BALANCE' => null, 'AUTHORIZED' => is_object($USER) && $USER->IsAuthorized()];
if ($arResult['AUTHORIZED']) {
    $arResult['CARD_NUMBER'] = Customers::card((int)$USER->GetID());
    $arResult['BALANCE'] = Gateway::balance($arResult['CARD_NUMBER']);
}
$this->IncludeComponentTemplate();
