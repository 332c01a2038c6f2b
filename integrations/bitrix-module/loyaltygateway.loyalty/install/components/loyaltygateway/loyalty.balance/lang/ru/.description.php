<?php
$MESS['LOYALTYGATEWAY_BALANCE_NAME'] = 'Бонусные баллы';
$MESS['LOYALTYGATEWAY_BALANCE_DESCRIPTION'] = 'Баланс бонусной карты покупателя в личном кабинете';
