<?php
$MESS['LOYALTYGATEWAY_BALANCE_SIGN_IN'] = 'Войдите, чтобы увидеть свои баллы.';
$MESS['LOYALTYGATEWAY_BALANCE_NO_CARD'] = 'У вас пока нет бонусной карты.';
$MESS['LOYALTYGATEWAY_BALANCE_UNAVAILABLE'] = 'Баланс сейчас недоступен, загляните позже.';
$MESS['LOYALTYGATEWAY_BALANCE_CARD'] = 'Бонусная карта';
$MESS['LOYALTYGATEWAY_BALANCE_AVAILABLE'] = 'Доступно баллов';
$MESS['LOYALTYGATEWAY_BALANCE_HELD'] = 'Зарезервировано';
$MESS['LOYALTYGATEWAY_BALANCE_PENDING'] = 'Начислятся после получения заказа';
$MESS['LOYALTYGATEWAY_BALANCE_EXPIRING'] = '#POINTS# баллов сгорят #DATE#';
