<?php
$MESS['LOYALTYGATEWAY_UNAVAILABLE'] = 'Сейчас нельзя оплатить заказ баллами: сервис бонусов недоступен. Оформите заказ без баллов или попробуйте позже.';
$MESS['LOYALTYGATEWAY_REFUSED'] = 'Баллы не могут быть списаны: #MESSAGE#';
$MESS['LOYALTYGATEWAY_TOO_MANY_POINTS'] = 'Этим заказом можно оплатить не больше #MAX# баллов.';
