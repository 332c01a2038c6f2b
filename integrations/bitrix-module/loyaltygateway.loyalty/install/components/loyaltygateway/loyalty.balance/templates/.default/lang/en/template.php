<?php
$MESS['LOYALTYGATEWAY_BALANCE_SIGN_IN'] = 'Sign in to see your points.';
$MESS['LOYALTYGATEWAY_BALANCE_NO_CARD'] = 'You have no loyalty card yet.';
$MESS['LOYALTYGATEWAY_BALANCE_UNAVAILABLE'] = 'The balance is unavailable now, please look in later.';
$MESS['LOYALTYGATEWAY_BALANCE_CARD'] = 'Loyalty card';
$MESS['LOYALTYGATEWAY_BALANCE_AVAILABLE'] = 'Points available';
$MESS['LOYALTYGATEWAY_BALANCE_HELD'] = 'Reserved';
$MESS['LOYALTYGATEWAY_BALANCE_PENDING'] = 'Earned once the order is received';
$MESS['LOYALTYGATEWAY_BALANCE_EXPIRING'] = '#POINTS# points expire on #DATE#';
