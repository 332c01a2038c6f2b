"""The channel-neutral bot (gateway/bots) through its one entry point, without a channel: the
referral of ``/start <card>``, a customer the ledger knows already, the questionnaire's answers
and refusals, «Стоп» before registration, English, and the bot as a message provider."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import select

from contracts.operations import LookupCustomerRequest, RegisterCustomerRequest
from contracts.profiles import ProfileChangesRequest
from gateway.bots.chats import ChatStore
from gateway.bots.config import BotsConfig
from gateway.bots.conversation import BotConversation, Incoming, Reply
from gateway.bots.delivery import BotProvider, ChatBlocked
from gateway.config import DEMO_CONFIG, ConfigError, GatewayConfig, Settings, load_config, parse_config
from gateway.core.messaging import OutgoingMessage, TerminalSendError
from gateway.ledger.service import LoyaltyService
from gateway.notify.verification import PhoneVerification
from gateway.store.models_bots import BotChat
from gateway.store.models_profiles import ProfileChange
from gateway.wiring import build_service
from tests.support import FakeClock

BUILDING = Path(__file__).resolve().parents[2] / "gateway" / "demo" / "programs" / "building-materials.yaml"
_ids = itertools.count(1)


def _referral_program(tmp_path: Path) -> Path:
    text = BUILDING.read_text("utf-8")
    path = tmp_path / "building-referral.yaml"
    path.write_text(text.replace("\n  bonuses:\n", "\n  bonuses:\n    referral_welcome: {points: 300}\n"), "utf-8")
    return path


class Chat:
    """One user writing to the bot through a channel that shares contacts (Telegram-like)."""

    def __init__(self, bot: BotConversation, user: int, locale: str = "ru", shares_contacts: bool = True) -> None:
        self.bot, self.user, self.locale, self.shares = bot, str(user), locale, shares_contacts
        self.replies: list[Reply] = []

    def say(self, text: str = "", contact_phone: str | None = None) -> list[Reply]:
        message = Incoming(
            "telegram", str(next(_ids)), self.user, self.user, text, contact_phone=contact_phone, locale=self.locale
        )
        replies = self.bot.handle(message, shares_contacts=self.shares)
        self.replies += replies
        return replies

    def texts(self) -> list[str]:
        return [r.text for r in self.replies]


@pytest.fixture
def service(database_url: str, clock: FakeClock) -> Iterator[LoyaltyService]:
    built = build_service(Settings(database_url=database_url), load_config(DEMO_CONFIG), clock)
    yield built
    built.db.dispose()


def _bot(service: LoyaltyService, config: GatewayConfig | None = None, **bots: object) -> BotConversation:
    notifications = (config or load_config(DEMO_CONFIG)).notifications
    return BotConversation(service, BotsConfig.model_validate(bots), PhoneVerification(service, notifications))


def test_a_friend_invited_by_start_code_gets_the_referral_welcome_and_names_the_referrer(
    database_url: str, clock: FakeClock, tmp_path: Path
) -> None:
    config = load_config(_referral_program(tmp_path))
    service = build_service(Settings(database_url=database_url), config, clock)
    referrer = service.register_customer("site", "k1", RegisterCustomerRequest(card_number="2700000021011"))
    chat = Chat(_bot(service, config, questionnaire=[]), 2001)
    chat.say("/start 2700000021011")
    chat.say(contact_phone="+79990021028")
    friend = service.lookup_customer("bot", _lookup_phone("+79990021028"))
    assert friend.referrer_id == referrer.customer_id
    assert "Приветственные бонусы: 500" in chat.texts()[1]  # the program's 200 and the friend's own 300
    service.db.dispose()


def _lookup_phone(phone: str) -> LookupCustomerRequest:
    return LookupCustomerRequest(phone=phone)


def test_an_unknown_invitation_code_is_said_and_the_customer_registers_without_it(service: LoyaltyService) -> None:
    chat = Chat(_bot(service, questionnaire=[]), 2002)
    replies = chat.say("/start NOSUCHCARD")
    assert replies[0].text == "Код приглашения NOSUCHCARD не найден — зарегистрируем вас без него."
    chat.say(contact_phone="+79990022001")
    assert service.lookup_customer("bot", _lookup_phone("+79990022001")).referrer_id is None


def test_a_customer_the_ledger_knows_is_found_and_asked_only_what_the_profile_lacks(service: LoyaltyService) -> None:
    service.register_customer(
        "site", "k2", RegisterCustomerRequest(card_number="2700000099018", phone="+79990023001", name="Анна")
    )
    chat = Chat(_bot(service), 2003)
    chat.say("/start")
    found, question = chat.say(contact_phone="79990023001")  # Telegram gives the number without "+"
    assert found.text.startswith("Нашли вашу карту: 2700000099018.")
    assert question.text.startswith("Дата рождения")  # the name is known already
    assert service.lookup_customer("bot", _lookup_phone("+79990023001")).welcome_points == 0


def test_questionnaire_answers_are_checked_and_skipped_fields_stay_empty(service: LoyaltyService) -> None:
    chat = Chat(_bot(service), 2004)
    chat.say("/start")
    chat.say(contact_phone="+79990024001")
    chat.say("Пропустить")
    assert chat.say("31.02.1990")[0].text == "Не получилось прочитать дату. Напишите так: 15.03.1990."
    assert chat.say("01.01.2999")[0].text.startswith("Не получилось прочитать дату.")  # born in the future
    chat.say("12.12.1980")
    assert chat.say("не скажу")[0].text == "Выберите ответ кнопкой."
    chat.say("М")
    consent = chat.say("Пропустить")  # consent cannot be skipped: it is a yes or a no
    assert consent[0].text == "Выберите ответ кнопкой."
    chat.say("Нет")
    customer = service.lookup_customer("bot", _lookup_phone("+79990024001"))
    profile = service.customer_profile("bot", customer.customer_id)
    assert profile.customer.name is None
    assert str(profile.customer.birth_date) == "1980-12-12"
    assert (profile.gender, profile.ad_consent, profile.ad_consent_channel) == ("male", False, "bot")


def test_stop_before_registration_changes_nothing_and_says_so(service: LoyaltyService) -> None:
    chat = Chat(_bot(service), 2005)
    (reply,) = chat.say("Стоп")
    assert reply.text.startswith("Вы отписались от рекламных сообщений.")
    with service.db.read() as session:
        assert session.exec(select(ProfileChange)).all() == []


def test_stop_and_subscribe_record_the_consent_with_channel_bot_each_time(service: LoyaltyService) -> None:
    chat = Chat(_bot(service, questionnaire=["ad_consent"]), 2006)
    chat.say("/start")
    chat.say(contact_phone="+79990026001")
    chat.say("Да")
    chat.say("/stop")
    customer = service.lookup_customer("bot", _lookup_phone("+79990026001"))
    assert service.customer_profile("bot", customer.customer_id).ad_consent is False
    chat.say("Подписаться")
    profile = service.customer_profile("bot", customer.customer_id)
    assert (profile.ad_consent, profile.ad_consent_channel) == (True, "bot")
    changes = service.customer_changes("bot", ProfileChangesRequest(customer_id=customer.customer_id)).changes
    consents = sorted((c.changed_at, c.new_value, c.client_id) for c in changes if c.field == "ad_consent")
    assert [(value, client) for _, value, client in consents] == [("true", "bot"), ("false", "bot"), ("true", "bot")]


def test_an_english_speaking_customer_is_answered_in_english(service: LoyaltyService) -> None:
    chat = Chat(_bot(service, questionnaire=[]), 2007, locale="en")
    (welcome,) = chat.say("/start")
    assert welcome.text.startswith("Hello! This is the demo loyalty programme.")
    assert welcome.buttons == (("Share my phone",),) and welcome.ask_contact
    chat.say(contact_phone="+79990027001")
    (balance,) = chat.say("Balance")
    assert balance.text.startswith("Points available: 100.")


def test_the_same_update_twice_is_answered_once(service: LoyaltyService) -> None:
    bot = _bot(service, questionnaire=[])
    message = Incoming("vk", "evt-1", "3001", "3001", "+7 999 002-80-01")
    first = bot.handle(message, shares_contacts=False)
    assert first[0].text.startswith("Мы отправили код на")
    assert bot.handle(message, shares_contacts=False) == []


class _Sender:
    dedupes = False

    def __init__(self, blocked: bool = False) -> None:
        self.blocked = blocked
        self.sent: list[tuple[str, str]] = []

    def send_text(self, chat_id: str, text: str, message_id: str) -> str:
        if self.blocked:
            raise ChatBlocked("test", "403: Forbidden: bot was blocked by the user")
        self.sent.append((chat_id, text))
        return uuid.uuid4().hex


def test_the_bot_provider_sends_to_the_bound_chat_and_gives_way_when_there_is_none(service: LoyaltyService) -> None:
    chat = Chat(_bot(service, questionnaire=[]), 2009)
    chat.say("/start")
    chat.say(contact_phone="+79990029001")
    sender = _Sender()
    provider = BotProvider("tg", "telegram", ChatStore(service.db), sender)
    provider.send(OutgoingMessage("n-1", "+79990029001", "Начислено бонусов: 5. Баланс: 105."))
    assert sender.sent == [("2009", "Начислено бонусов: 5. Баланс: 105.")]
    with pytest.raises(TerminalSendError, match="no telegram chat is bound"):
        provider.send(OutgoingMessage("n-2", "+79990029999", "Начислено бонусов: 5."))


def test_a_blocked_chat_is_marked_and_skipped_until_the_customer_writes_again(service: LoyaltyService) -> None:
    chat = Chat(_bot(service, questionnaire=[]), 2010)
    chat.say("/start")
    chat.say(contact_phone="+79990030001")
    chats = ChatStore(service.db)
    with pytest.raises(ChatBlocked):
        BotProvider("tg", "telegram", chats, _Sender(blocked=True)).send(
            OutgoingMessage("n-1", "+79990030001", "текст")
        )
    with service.db.read() as session:
        row = session.get(BotChat, ("telegram", "2010"))
        assert row is not None and row.blocked
    assert chats.chat_for_phone("telegram", "+79990030001") is None
    chat.say("Баланс")  # the customer unblocked the bot and wrote to it
    assert chats.chat_for_phone("telegram", "+79990030001") is not None


def test_a_command_during_the_questionnaire_is_answered_and_the_question_asked_again(
    service: LoyaltyService,
) -> None:
    chat = Chat(_bot(service, questionnaire=["name"]), 2011)
    chat.say("/start")
    chat.say(contact_phone="+79990031001")
    balance, question = chat.say("Баланс")
    assert balance.text.startswith("Доступно бонусов: 100.")
    assert question.text == "Как вас зовут?"
    chat.say("Ольга")
    customer = service.lookup_customer("bot", _lookup_phone("+79990031001"))
    assert customer.name == "Ольга"  # not «Баланс»


def test_a_first_message_that_is_not_start_is_greeted_with_the_question_for_the_phone(
    service: LoyaltyService,
) -> None:
    bot = _bot(service)
    replies = bot.handle(Incoming("vk", "e-1", "4001", "4001", "Привет"), shares_contacts=False)
    assert [r.text for r in replies] == [
        "Здравствуйте! Это бонусная программа demo. Чтобы получить карту или найти свою, поделитесь номером "
        "телефона.\nНапишите номер телефона, например +7 912 345-67-89. Мы пришлём код подтверждения."
    ]


def test_an_update_whose_chat_moved_on_meanwhile_is_handled_again_from_the_new_state(
    service: LoyaltyService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Telegram may post two updates of one chat at once: «Пётр» (the name) is saved while the
    update «Мужской» is being handled from the state before it, where it would be the name."""
    bot = _bot(service, questionnaire=["name", "gender"])
    chat = Chat(bot, 2012)
    chat.say("/start")
    chat.say(contact_phone="+79990032001")
    before = bot.chats.load("telegram", "2012")
    chat.say("Пётр")
    fresh = bot.chats.load
    stale = [before]
    monkeypatch.setattr(bot.chats, "load", lambda channel, chat_id: stale.pop() if stale else fresh(channel, chat_id))
    chat.say("Мужской")
    customer = service.lookup_customer("bot", _lookup_phone("+79990032001"))
    profile = service.customer_profile("bot", customer.customer_id)
    assert (profile.customer.name, profile.gender) == ("Пётр", "male")


def test_a_bot_provider_without_its_bot_section_is_a_configuration_error() -> None:
    text = DEMO_CONFIG.read_text(encoding="utf-8") + (
        "\nnotifications:\n"
        "  providers: {tg: {type: bot, bot: telegram}, console: {type: console}}\n"
        "  chains: {verification: [console], notification: [tg, console]}\n"
    )
    with pytest.raises(ConfigError, match=r"notifications\.providers\.tg: no bots\.telegram section"):
        parse_config(text)
    with_bot = text + "bots:\n  telegram: {token: '123456:ABCdef-ghi_jkl'}\n"
    assert parse_config(with_bot).bots is not None


def test_one_chat_cannot_send_codes_to_phone_after_phone(service: LoyaltyService) -> None:
    """Codes are limited per chat as per the customer's address (verification.max_per_ip_per_hour,
    20 in the demo): the 21st number typed in one chat within the hour gets no code."""
    bot = _bot(service)
    answers = [
        bot.handle(Incoming("vk", f"c-{n}", "5001", "5001", f"+7 999 004-{n:02d}-00"), shares_contacts=False)[0].text
        for n in range(21)
    ]
    assert all(text.startswith("Мы отправили код на") for text in answers[:20])
    assert answers[20].startswith("Слишком много запросов кода. Новый можно запросить через")
    other = bot.handle(Incoming("vk", "c-other", "5002", "5002", "+7 999 004-99-00"), shares_contacts=False)
    assert other[0].text.startswith("Мы отправили код на")  # another chat is not limited by this one


def test_a_bot_text_naming_a_field_it_does_not_have_is_refused() -> None:
    with pytest.raises(ValueError, match=r"texts\.balance: \{bonus\} is not a field of this text"):
        BotsConfig(texts={"balance": "Бонусов: {bonus}"})
    with pytest.raises(ValueError, match=r"texts\.help: \{unbalanced brace\}"):
        BotsConfig(texts={"help": "Команды: {"})
    custom = BotsConfig(texts={"balance": "У вас {available} бонусов"})
    assert custom.text("ru", "balance") == "У вас {available} бонусов"
