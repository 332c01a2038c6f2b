<?php
/** New users become customers (main's OnAfterUserRegister); the card lands on the user. */
require __DIR__ . '/_shop.php';

$new = shop_user(['LOGIN' => 'gleb', 'NAME' => 'Глеб', 'LAST_NAME' => 'Орлов', 'EMAIL' => 'gleb@example.ru',
    'PERSONAL_PHONE' => '+7 912 555-44-33', 'PERSONAL_BIRTHDAY' => '12.04.1990']);
report('new_card', CUser::GetByID($new)->Fetch()['UF_LOYALTY_CARD'] ?? null);
$known = shop_user(['LOGIN' => 'anna', 'NAME' => 'Анна', 'EMAIL' => 'anna@example.ru', 'PERSONAL_PHONE' => '8 (999) 000-00-01']);
report('known_card', CUser::GetByID($known)->Fetch()['UF_LOYALTY_CARD'] ?? null);
report('queue', queue_state());
