<?php
$MESS['LOYALTYGATEWAY_BALANCE_NAME'] = 'Bonus points';
$MESS['LOYALTYGATEWAY_BALANCE_DESCRIPTION'] = 'The customer\'s loyalty card balance in the personal account';
