"""The channel-neutral bot: what a customer may say and what the bot answers, whatever the chat.

A channel adapter (``adapters/telegram_bot``, ``adapters/vk``) turns its update into an
``Incoming`` and sends the ``Reply`` list back in its own shapes. ``BotConversation.handle``:

* registers the customer when the phone is known: a phone the channel vouches for (Telegram: a
  contact the user shared of themself) at once, a typed one after the SMS code of
  ``gateway/notify/verification.py`` — through the ledger's register operation, with the welcome
  bonus and the referrer of ``/start <card>``; a customer who has the phone already is found;
* asks the configured questionnaire (fields the profile lacks) and writes the answers through the
  profile upkeep (``LoyaltyService.update_customer``), consent with its date and channel ``bot``;
* answers balance (available, pending, expiring), card (a barcode picture), history, promotions;
* unsubscribes from advertising («Стоп»): consent false, channel ``bot``; service messages go on.

Every ledger call carries a key made of the channel and the update id, and the update is recorded
as handled with the chat's new state in one transaction: the same update twice changes nothing
and is answered once (a duplicate returns no replies).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date, datetime

from pydantic import ValidationError

from contracts.errors import ErrorCode, LoyaltyError
from contracts.operations import BalanceRequest, CustomerResult, LookupCustomerRequest, RegisterCustomerRequest
from contracts.profiles import ProfileResult, UpdateCustomerRequest
from gateway.bots.barcode import card_barcode_png
from gateway.bots.chats import Chat, ChatChanged, ChatStore
from gateway.bots.config import BotsConfig
from gateway.bots.texts import COMMANDS, HISTORY_KINDS
from gateway.ledger.phones import mask_phone, normalize_phone
from gateway.ledger.service import LoyaltyService
from gateway.notify.verification import PhoneVerification

log = logging.getLogger("gateway.bots")

_PLAIN = re.compile(r"^[^\x00-\x1f\x7f]{1,256}$")
_DATE = re.compile(r"^(\d{1,2})[./\-](\d{1,2})[./\-](\d{4})$")
_CODE = re.compile(r"^\d{4,8}$")
_REFERRAL = re.compile(r"^[0-9A-Za-z\-_]{1,64}$")
ATTEMPTS = 3  # an update whose chat another update moved meanwhile is handled again from the new state


@dataclass(frozen=True)
class Incoming:
    """One message from a customer, as any channel says it."""

    channel: str  # telegram | vk
    update_id: str  # the channel's id of this delivery: a resend carries the same one
    chat_id: str
    user_id: str
    text: str = ""
    contact_phone: str | None = None  # a phone the channel vouches for as the user's own
    foreign_contact: bool = False  # the user shared somebody else's contact
    locale: str = "ru"


@dataclass(frozen=True)
class Reply:
    """One message of the bot: text, optional keyboard rows, optional picture (PNG)."""

    text: str
    buttons: tuple[tuple[str, ...], ...] = ()
    ask_contact: bool = False  # the channel's own "share my phone" button comes first
    image_png: bytes | None = None


class BotConversation:
    def __init__(
        self,
        service: LoyaltyService,
        config: BotsConfig,
        verification: PhoneVerification,
        chats: ChatStore | None = None,
    ) -> None:
        self.service = service
        self.config = config
        self.verification = verification
        self.chats = chats or ChatStore(service.db)
        self.client = config.client_id

    # -- the one entry point ----------------------------------------------------------------

    def handle(self, message: Incoming, *, shares_contacts: bool) -> list[Reply]:
        """Answer one update; ``shares_contacts``: the channel can send the user's own verified
        phone (Telegram), else phones are typed and confirmed by a code. Errors of the database
        propagate (the channel then resends the update); a ledger refusal is answered."""
        for attempt in range(1, ATTEMPTS + 1):
            if self.chats.handled(message.channel, message.update_id):
                return []
            chat = self.chats.load(message.channel, message.chat_id) or Chat(
                message.channel, message.chat_id, message.user_id
            )
            chat.user_id = message.user_id
            chat.locale = message.locale
            turn = _Turn(self, chat, message, shares_contacts)
            try:
                replies = turn.run()
            except (LoyaltyError, ValidationError) as exc:
                # A refusal is answered and the update is done (a resend would be refused again).
                code = exc.code if isinstance(exc, LoyaltyError) else "validation_error"
                log.warning("bot %s: update %s refused: %s", message.channel, message.update_id, code)
                replies = [Reply(turn.t("failure"))]
            try:
                saved = self.chats.save(chat, message.update_id, self.service.clock())
            except ChatChanged:
                if attempt == ATTEMPTS:
                    raise
                continue  # another update of this chat was saved meanwhile: again, from its state
            return replies if saved else []
        raise AssertionError("unreachable")  # pragma: no cover


class _Turn:
    """One update's work on one chat."""

    def __init__(self, bot: BotConversation, chat: Chat, message: Incoming, shares_contacts: bool) -> None:
        self.bot = bot
        self.service = bot.service
        self.config = bot.config
        self.chat = chat
        self.message = message
        self.shares_contacts = shares_contacts

    def t(self, name: str, **values: object) -> str:
        return self.config.text(self.chat.locale, name).format(**values)

    def key(self, what: str) -> str:
        return f"bot:{self.message.channel}:{self.message.update_id}:{what}"

    # -- routing ----------------------------------------------------------------------------

    def run(self) -> list[Reply]:
        text = self.message.text.strip()
        word, _, rest = text.partition(" ")
        # /start (Telegram, with the referral code of a t.me/<bot>?start=<card> link) or VK's «Начать»
        if word.lower() in {"/start", "start", "начать"} or (not text and self.chat.step == "start"):
            return self.start(rest.strip())
        if self.message.contact_phone or self.message.foreign_contact:
            return self.contact()
        command = next((name for name, words in COMMANDS.items() if text.lower().lstrip("/") in words), None)
        if command is not None:
            replies = self.command(command)
            if self.chat.step.startswith("q:"):  # the questionnaire still waits for its answer
                replies += self.next_question()
            return replies
        if self.chat.customer_id is None and self.chat.step == "start" and not _looks_like_phone(text):
            return self.start("")  # a first message that is not /start: greet and ask for the phone
        if self.chat.customer_id is None and self.chat.step in ("start", "phone"):
            return self.typed_phone(text)
        if self.chat.step == "code":
            return self.code(text)
        if self.chat.step.startswith("q:"):
            return self.answer(self.chat.step[2:], text)
        return [Reply(self.t("unknown"), self.menu())]

    def start(self, code: str) -> list[Reply]:
        chat = self.chat
        if chat.customer_id is not None:
            return [Reply(self.t("help"), self.menu())]
        replies: list[Reply] = []
        if code:
            if _REFERRAL.match(code) and self._card_exists(code):
                chat.referrer_card = code
            else:
                replies.append(Reply(self.t("referral_unknown", code=code[:64])))
        chat.step = "phone"
        replies.append(self.ask_phone(self.t("welcome", program=self.service.program.name)))
        return replies

    def ask_phone(self, lead: str | None = None) -> Reply:
        how = self.t("ask_phone_contact") if self.shares_contacts else self.t("ask_phone_typed")
        text = f"{lead}\n{how}" if lead else how
        if self.shares_contacts:
            return Reply(text, ((self.t("btn_share_phone"),),), ask_contact=True)
        return Reply(text)

    # -- the phone --------------------------------------------------------------------------

    def contact(self) -> list[Reply]:
        if self.chat.customer_id is not None:
            return [Reply(self.t("help"), self.menu())]
        if self.message.foreign_contact or not self.message.contact_phone:
            return [self.ask_phone(self.t("foreign_contact"))]
        phone = normalize_phone(self.message.contact_phone)
        replies = self.bound(self._register(phone))
        # The channel vouches for the phone: no "confirm your phone" reminders for it.
        self.bot.verification.record_confirmed(phone)
        return replies

    def typed_phone(self, text: str) -> list[Reply]:
        if self.chat.customer_id is not None:
            return [Reply(self.t("unknown"), self.menu())]
        try:
            phone = normalize_phone(text)
        except LoyaltyError:
            return [self.ask_phone(self.t("bad_phone"))]
        try:
            # The chat stands for the customer's address: codes per chat are limited as per address,
            # so one chat cannot send codes to phone after phone at the retailer's expense.
            sent = self.bot.verification.request_code(phone, f"{self.chat.channel}:{self.chat.user_id}"[:64])
        except LoyaltyError as exc:
            if exc.code != ErrorCode.RATE_LIMITED:
                raise
            return [Reply(self.t("code_too_often", seconds=exc.details.get("retry_after", 60)))]
        self.chat.phone = phone
        self.chat.step = "code"
        return [Reply(self.t("code_sent", phone=sent.phone_masked))]

    def code(self, text: str) -> list[Reply]:
        digits = text.replace(" ", "")
        if not _CODE.match(digits):
            if _looks_like_phone(text):
                return self.typed_phone(text)
            return [Reply(self.t("code_wrong", attempts="?"))]
        assert self.chat.phone is not None
        request = RegisterCustomerRequest(phone=self.chat.phone, referrer_card=self.chat.referrer_card)
        try:
            customer = self.bot.verification.verify(self.bot.client, request, digits)
        except LoyaltyError as exc:
            if exc.code == ErrorCode.CODE_INVALID and "attempts_left" in exc.details:
                return [Reply(self.t("code_wrong", attempts=exc.details["attempts_left"]))]
            if exc.code in (ErrorCode.CODE_INVALID, ErrorCode.CODE_EXPIRED, ErrorCode.CODE_ATTEMPTS_EXCEEDED):
                self.chat.step = "phone"
                return [self.ask_phone(self.t("code_expired"))]
            raise
        return self.bound(customer)

    def _register(self, phone: str) -> CustomerResult:
        """Register the customer with this (verified) phone, or find the one who has it."""
        request = RegisterCustomerRequest(phone=phone, referrer_card=self.chat.referrer_card)
        try:
            return self.service.register_customer(self.bot.client, self.key("register"), request)
        except LoyaltyError as exc:
            if exc.code != ErrorCode.CUSTOMER_ALREADY_EXISTS:
                raise
            return self.service.lookup_customer(self.bot.client, LookupCustomerRequest(phone=phone))

    def bound(self, customer: CustomerResult) -> list[Reply]:
        chat = self.chat
        chat.customer_id = customer.customer_id
        chat.phone = customer.phone
        chat.referrer_card = None
        card = _active_card(customer)
        log.info("bot %s chat bound to customer %s (%s)", chat.channel, customer.customer_id, mask_phone(chat.phone))
        if customer.created:
            name = "registered_welcome" if customer.welcome_points else "registered"
            first = Reply(self.t(name, card=card, points=customer.welcome_points))
        else:
            first = Reply(self.t("found", card=card))
        profile = self.service.customer_profile(self.bot.client, customer.customer_id)
        chat.answers = {"fields": [f for f in self.config.questionnaire if _missing(profile, f)]}
        return [first, *self.next_question()]

    # -- the questionnaire ------------------------------------------------------------------

    def next_question(self) -> list[Reply]:
        fields: list[str] = self.chat.answers.get("fields", [])
        asked = [f for f in fields if f not in self.chat.answers]
        if not asked:
            return self.finish_questionnaire()
        field = asked[0]
        self.chat.step = f"q:{field}"
        skip = (self.t("btn_skip"),)
        if field == "gender":
            return [Reply(self.t("ask_gender"), ((self.t("btn_male"), self.t("btn_female")), skip))]
        if field == "ad_consent":
            return [Reply(self.t("ask_ad_consent"), ((self.t("btn_yes"), self.t("btn_no")),))]
        return [Reply(self.t(f"ask_{field}"), (skip,))]

    def answer(self, field: str, text: str) -> list[Reply]:
        said = text.strip()
        lowered = said.lower()
        value: object = None
        if field != "ad_consent" and lowered in {self.t("btn_skip").lower(), "skip", "пропустить"}:
            value = None
        elif field == "name":
            if not _PLAIN.match(said):
                return [Reply(self.t("ask_name"), ((self.t("btn_skip"),),))]
            value = said
        elif field == "birth_date":
            born = _birth_date(said, self.service.clock().date())
            if born is None:
                return [Reply(self.t("bad_birth_date"), ((self.t("btn_skip"),),))]
            value = born.isoformat()
        elif field == "gender":
            value = _choice(lowered, {"male": ("мужской", "м", "male", "m"), "female": ("женский", "ж", "female", "f")})
            if value is None:
                return [Reply(self.t("bad_answer"), ((self.t("btn_male"), self.t("btn_female")),))]
        elif field == "ad_consent":
            value = _choice(lowered, {True: ("да", "yes", "согласен", "согласна"), False: ("нет", "no")})
            if value is None:
                return [Reply(self.t("bad_answer"), ((self.t("btn_yes"), self.t("btn_no")),))]
        self.chat.answers[field] = value
        return self.next_question()

    def finish_questionnaire(self) -> list[Reply]:
        chat = self.chat
        answers = {k: v for k, v in chat.answers.items() if k != "fields" and v is not None}
        assert chat.customer_id is not None
        if answers:
            consent = answers.get("ad_consent")
            self.service.update_customer(
                self.bot.client,
                self.key("profile"),
                UpdateCustomerRequest(
                    customer_id=chat.customer_id,
                    name=answers.get("name"),
                    birth_date=date.fromisoformat(answers["birth_date"]) if "birth_date" in answers else None,
                    gender=answers.get("gender"),
                    ad_consent=consent,
                    ad_consent_channel="bot" if consent is not None else None,
                ),
            )
        # Only now: a refused profile change leaves the answers, and the last one may be given again.
        chat.answers = {}
        chat.step = "ready"
        first = Reply(self.t("questionnaire_done" if answers else "help"), self.menu())
        return [first, *self.card()]

    # -- commands ---------------------------------------------------------------------------

    def menu(self) -> tuple[tuple[str, ...], ...]:
        if self.chat.customer_id is None:
            return ()
        return (
            (self.t("btn_balance"), self.t("btn_card")),
            (self.t("btn_history"), self.t("btn_promotions")),
            (self.t("btn_stop"),),
        )

    def command(self, name: str) -> list[Reply]:
        if name == "help":
            return [Reply(self.t("help"), self.menu())]
        if name == "promotions":
            return [self.promotions()]
        if name == "stop":
            return [self.consent(False)]
        if self.chat.customer_id is None:
            if self.chat.step == "code":  # a code is on its way: keep waiting for it
                return [Reply(self.t("not_registered"))]
            self.chat.step = "phone"
            return [self.ask_phone(self.t("not_registered"))]
        if name == "subscribe":
            return [self.consent(True)]
        if name == "balance":
            return [self.balance()]
        if name == "card":
            return self.card()
        return [self.history()]

    def consent(self, agreed: bool) -> Reply:
        if self.chat.customer_id is not None:
            self.service.update_customer(
                self.bot.client,
                self.key("consent"),
                UpdateCustomerRequest(customer_id=self.chat.customer_id, ad_consent=agreed, ad_consent_channel="bot"),
            )
        return Reply(self.t("subscribed" if agreed else "stopped"), self.menu())

    def _customer(self) -> CustomerResult:
        assert self.chat.customer_id is not None
        return self.service.lookup_customer(self.bot.client, LookupCustomerRequest(customer_id=self.chat.customer_id))

    def balance(self) -> Reply:
        card = _active_card(self._customer())
        result = self.service.balance(self.bot.client, BalanceRequest(card_number=card))
        lines = [self.t("balance", available=result.available, pending=result.pending, held=result.held)]
        if result.expiring:
            lines.append(self.t("expiring_head"))
            lines += [
                self.t("expiring_line", points=e.points, date=self._day(e.expires_at)) for e in result.expiring[:5]
            ]
        return Reply("\n".join(lines), self.menu())

    def card(self) -> list[Reply]:
        card = _active_card(self._customer())
        replies = [Reply(self.t("card", card=card), self.menu(), image_png=card_barcode_png(card))]
        username = self.config.telegram.username if self.config.telegram else None
        if self.chat.channel == "telegram" and username:
            replies.append(Reply(self.t("referral_link", link=f"https://t.me/{username}?start={card}")))
        return replies

    def history(self) -> Reply:
        assert self.chat.customer_id is not None
        found = self.service.customer_history(self.bot.client, self.chat.customer_id, self.config.history_lines)
        if not found.entries:
            return Reply(self.t("history_empty"), self.menu())
        kinds = HISTORY_KINDS["en" if self.chat.locale == "en" else "ru"]
        lines = [self.t("history_head")]
        for entry in found.entries[: self.config.history_lines]:
            sign = "+" if entry.points > 0 else ""
            lines.append(f"{self._day(entry.created_at)}: {sign}{entry.points} {kinds.get(entry.kind, entry.kind)}")
        return Reply("\n".join(lines), self.menu())

    def promotions(self) -> Reply:
        today = self.service.clock().astimezone(self.service.program.zone).date()
        codes = [
            self.t("promo_line", code=p.code, description=p.description)
            for p in self.service.program.promo_codes
            if (p.valid_from is None or p.valid_from <= today) and (p.valid_to is None or today <= p.valid_to)
        ]
        lines = [*self.config.promotions, *codes]
        if not lines:
            return Reply(self.t("promotions_empty"), self.menu())
        return Reply("\n".join([self.t("promotions_head"), *lines]), self.menu())

    # -- helpers ----------------------------------------------------------------------------

    def _day(self, moment: datetime) -> str:
        return moment.astimezone(self.service.program.zone).strftime("%d.%m.%Y")

    def _card_exists(self, number: str) -> bool:
        try:
            self.service.lookup_customer(self.bot.client, LookupCustomerRequest(card_number=number))
        except LoyaltyError:
            return False
        return True


def _active_card(customer: CustomerResult) -> str:
    active = [c.card_number for c in customer.cards if c.status == "active"]
    if not active:
        raise LoyaltyError(ErrorCode.CARD_NOT_FOUND, customer_id=customer.customer_id)
    return active[0]


def _missing(profile: ProfileResult, field: str) -> bool:
    if field == "name":
        return not profile.customer.name
    if field == "birth_date":
        return profile.customer.birth_date is None
    if field == "gender":
        return profile.gender is None
    return profile.ad_consent is None


def _choice(said: str, options: dict[object, tuple[str, ...]]) -> object:
    return next((value for value, words in options.items() if said in words), None)


def _birth_date(text: str, today: date) -> date | None:
    match = _DATE.match(text)
    if match is None:
        return None
    try:
        born = date(int(match.group(3)), int(match.group(2)), int(match.group(1)))
    except ValueError:
        return None
    return born if date(1900, 1, 1) <= born <= today else None


def _looks_like_phone(text: str) -> bool:
    return sum(ch.isdigit() for ch in text) >= 10
