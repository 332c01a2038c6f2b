<?php
$MESS['LOYALTYGATEWAY_MODULE_NAME'] = 'Loyalty gateway';
$MESS['LOYALTYGATEWAY_MODULE_DESCRIPTION'] = 'Customers\' bonus points through the loyalty gateway for 1C: accrual, paying with points at checkout, the balance in the personal account.';
$MESS['LOYALTYGATEWAY_PARTNER_NAME'] = 'Loyalty gateway (open source)';
