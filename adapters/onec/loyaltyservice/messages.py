"""Texts a cashier reads: our stable error codes in Russian (the code travels alongside)."""

from __future__ import annotations

from contracts.errors import ErrorCode

# Plain-text replies the till compares word for word (1C:УНФ, AlexanderYekat/unf
# DataProcessors/РабочееМестоКассира/Forms/ФормаРМК/Ext/Form/Module.bsl: СписатьРазблокироватьБонусныеБаллы,
# РазблокироватьОбъектСервераЛояльности, СписатьПодарочныйСертификат); the other texts are those of
# 1C's own server (HTTPServices/СерверЛояльности), which the till shows as a failure.
BONUSES_WRITTEN_OFF = "Бонусы успешно списаны"
BONUSES_UNLOCKED = "Бонусы разблокированы"
GIFT_CARD_WRITTEN_OFF = "Подарочный сертификат успешно списан на указанную сумму"
GIFT_CARD_UNLOCKED = "Подарочный сертификат разблокирован"
PROMOCODE_UNLOCKED = "Промокод разблокирован"
CARD_NOT_FOUND = "Карта клиента не найдена"
GIFT_CARD_NOT_FOUND = "Подарочный сертификат не найден"

CASHIER_TEXT: dict[ErrorCode, str] = {
    ErrorCode.VALIDATION_ERROR: "Некорректный запрос",
    ErrorCode.UNAUTHORIZED: "Неверный логин или пароль сервера лояльности",
    ErrorCode.FORBIDDEN: "Нет прав на операцию",
    ErrorCode.NOT_FOUND: "Не найдено",
    ErrorCode.CARD_NOT_FOUND: "Карта не найдена",
    ErrorCode.CARD_BLOCKED: "Карта заблокирована или заменена",
    ErrorCode.CARD_ALREADY_EXISTS: "Карта с таким номером уже выпущена",
    ErrorCode.CUSTOMER_NOT_FOUND: "Клиент не найден",
    ErrorCode.CUSTOMER_ALREADY_EXISTS: "Клиент с таким телефоном или e-mail уже зарегистрирован",
    ErrorCode.INSUFFICIENT_POINTS: "Недостаточно бонусов",
    ErrorCode.POINTS_LIMIT_EXCEEDED: "Превышен лимит оплаты бонусами",
    ErrorCode.HOLD_NOT_FOUND: "Блокировка бонусов не найдена",
    ErrorCode.HOLD_EXPIRED: "Блокировка бонусов истекла, считайте карту заново",
    ErrorCode.HOLD_ALREADY_RESOLVED: "Бонусы уже списаны или разблокированы",
    ErrorCode.HOLD_CARD_MISMATCH: "Блокировка относится к другой карте",
    ErrorCode.RECEIPT_NOT_FOUND: "Чек не найден",
    ErrorCode.RECEIPT_ALREADY_COMMITTED: "Чек уже проведён с другим содержимым",
    ErrorCode.REFUND_EXCEEDS_RECEIPT: "Возврат больше, чем осталось по чеку",
    ErrorCode.GIFT_CARD_NOT_FOUND: "Подарочный сертификат не найден",
    ErrorCode.GIFT_CARD_BLOCKED: "Подарочный сертификат заблокирован",
    ErrorCode.GIFT_CARD_EXPIRED: "Срок действия подарочного сертификата истёк",
    ErrorCode.GIFT_CARD_INSUFFICIENT: "Недостаточно средств на подарочном сертификате",
    ErrorCode.PROMOCODE_NOT_FOUND: "Промокод не найден",
    ErrorCode.PROMOCODE_UNAVAILABLE: "Промокод сейчас не действует",
    ErrorCode.GIFT_CARD_REFUND_EXCEEDS: "Возврат на сертификат больше, чем им оплачено",
    ErrorCode.CUSTOMER_MERGED: "Клиент объединён с другим клиентом",
    ErrorCode.MEMBER_MAY_NOT_SPEND: "Этой карте компании не разрешено списывать бонусы",
    ErrorCode.MEMBER_MAY_NOT_EARN: "Этой карте компании не разрешено начислять бонусы",
    ErrorCode.RATE_LIMITED: "Слишком много запросов, повторите позже",
    ErrorCode.CODE_INVALID: "Неверный код подтверждения",
    ErrorCode.CODE_EXPIRED: "Срок действия кода истёк",
    ErrorCode.CODE_ATTEMPTS_EXCEEDED: "Исчерпаны попытки ввода кода",
    ErrorCode.IDEMPOTENCY_KEY_REQUIRED: "Нет ключа идемпотентности",
    ErrorCode.IDEMPOTENCY_CONFLICT: "Повтор запроса с другим содержимым",
    ErrorCode.IDEMPOTENCY_IN_FLIGHT: "Запрос ещё выполняется, повторите позже",
    ErrorCode.NOT_CONFIGURED: "Функция не настроена на сервере лояльности",
    ErrorCode.CONFIG_ERROR: "Ошибка настройки сервера лояльности",
    ErrorCode.INTERNAL_ERROR: "Внутренняя ошибка сервера лояльности",
}


def cashier_text(code: ErrorCode, detail: str | None = None) -> str:
    text = CASHIER_TEXT.get(code, "Ошибка сервера лояльности")
    return f"{text}: {detail}" if detail else text
