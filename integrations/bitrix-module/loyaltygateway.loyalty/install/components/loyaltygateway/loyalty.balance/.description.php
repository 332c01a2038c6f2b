<?php
defined('B_PROLOG_INCLUDED') && B_PROLOG_INCLUDED === true || die();
$arComponentDescription = [
    'NAME' => GetMessage('LOYALTYGATEWAY_BALANCE_NAME'),
    'DESCRIPTION' => GetMessage('LOYALTYGATEWAY_BALANCE_DESCRIPTION'),
    'PATH' => ['ID' => 'loyaltygateway', 'NAME' => GetMessage('LOYALTYGATEWAY_BALANCE_NAME')],
];
