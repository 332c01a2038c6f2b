<?php
$MESS['LOYALTYGATEWAY_UNAVAILABLE'] = 'Points cannot pay for the order now: the bonus service is unavailable. Place the order without points or try again later.';
$MESS['LOYALTYGATEWAY_REFUSED'] = 'The points cannot be spent: #MESSAGE#';
$MESS['LOYALTYGATEWAY_TOO_MANY_POINTS'] = 'This order can be paid with at most #MAX# points.';
