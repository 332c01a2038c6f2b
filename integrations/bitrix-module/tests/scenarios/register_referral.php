<?php
/** A new user who came with a referral code (the user field the module reads, here a phone). */
require __DIR__ . '/_shop.php';

$new = shop_user(['LOGIN' => 'dina', 'NAME' => 'Дина', 'EMAIL' => 'dina@example.ru',
    'PERSONAL_PHONE' => '+7 912 555-44-66', 'UF_LOYALTY_REFERRER' => '8 (999) 000-00-02']);
report('new_card', CUser::GetByID($new)->Fetch()['UF_LOYALTY_CARD'] ?? null);
report('queue', queue_state());
