<?php
$MESS['LOYALTYGATEWAY_MODULE_NAME'] = 'Шлюз лояльности';
$MESS['LOYALTYGATEWAY_MODULE_DESCRIPTION'] = 'Бонусные баллы покупателей магазина через шлюз лояльности для 1С: начисление, списание при оформлении заказа, баланс в личном кабинете.';
$MESS['LOYALTYGATEWAY_PARTNER_NAME'] = 'Шлюз лояльности (open source)';
