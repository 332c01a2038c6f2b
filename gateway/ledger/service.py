"""``LoyaltyService``: the one entry point every protocol adapter calls.

Each method takes the calling client's id and a normalized ``contracts`` request and returns the
matching result. Mutating methods also take an idempotency key (the JSON API's
``Idempotency-Key`` header, SOAP's ``RequestID``, a derived key for 1C) and run exactly once per
key. Reads run in a read transaction and never lock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TypeVar

from pydantic import BaseModel
from sqlmodel import Session

from contracts.accounts import (
    CampaignActiveRequest,
    CampaignBatchInfo,
    CampaignCodesResult,
    CampaignGenerateRequest,
    CampaignRequest,
    CampaignResult,
    CompanyRequest,
    CompanyResult,
    CustomerHistoryResult,
    GiftCardBatchRequest,
    GiftCardBatchResult,
    GiftCardBlockRequest,
    GiftCardHistoryResult,
    GiftCardRefundRequest,
    GiftCardRefundResult,
    MemberRemoveRequest,
    MemberRequest,
    MemberRoleRequest,
    MergeCustomersRequest,
    MergeResult,
    PromoCheckRequest,
    PromoCodeInfo,
    PromoReleaseRequest,
    PromoReserveRequest,
)
from contracts.operations import (
    BalanceRequest,
    BalanceResult,
    CalculateRequest,
    CalculateResult,
    CancelRequest,
    CancelResult,
    CaptureRequest,
    CardResult,
    CartLine,
    CommitRequest,
    CommitResult,
    CustomerResult,
    GiftCardHoldRequest,
    GiftCardInfoRequest,
    GiftCardIssueRequest,
    GiftCardRedeemRequest,
    GiftCardReleaseRequest,
    GiftCardResult,
    HoldRequest,
    HoldResult,
    IssueCardRequest,
    LookupCustomerRequest,
    OfflineReceiptRequest,
    OperationKind,
    RefundRequest,
    RefundResult,
    RegisterCustomerRequest,
    ReplaceCardRequest,
)
from contracts.orders import OrderRecord, OrderRequest, OrderResult
from contracts.profiles import ProfileChangesRequest, ProfileChangesResult, ProfileResult, UpdateCustomerRequest
from gateway.core.program import Program
from gateway.core.rules.progress import TierProgress, tier_progress
from gateway.ledger import (
    calculation,
    campaign_uses,
    campaigns,
    companies,
    customers,
    giftcard_batches,
    giftcard_history,
    giftcards,
    history,
    hold_expiry,
    holds,
    merge,
    orders,
    profiles,
    promos,
    receipts,
    refunds,
    till,
)
from gateway.ledger.accounts import balance_of, find_card
from gateway.ledger.context import Clock, Ctx, utc_now
from gateway.ledger.idempotency import IN_FLIGHT_LEASE, run_idempotent
from gateway.ledger.invariants import InvariantReport, check_ledger
from gateway.ledger.mappings import MAX_ROWS, Unmapped, bounded, list_unmapped, record_unmapped
from gateway.ledger.pricing_context import local_day, pricing_context, window_turnover
from gateway.ledger.transaction_lookup import FoundTransaction, find_by_id_prefix
from gateway.outbound.events import events_for
from gateway.outbound.outbox import Event, Subscription, publish
from gateway.store.db import Database
from gateway.store.models import IdempotencyKey, UnmappedRef

log = logging.getLogger("gateway.ledger")

R = TypeVar("R", bound=BaseModel)
T = TypeVar("T")
EventHook = Callable[[Session, list[Event], datetime], None]
Req = TypeVar("Req", bound=BaseModel)


class LoyaltyService:
    def __init__(
        self,
        db: Database,
        program: Program,
        clock: Clock = utc_now,
        subscriptions: Sequence[Subscription] = (),
        in_flight_lease: timedelta = IN_FLIGHT_LEASE,
        event_hooks: Sequence[EventHook] = (),
        capture_settlers: Mapping[str, frozenset[str]] | None = None,
    ) -> None:
        self.db = db
        # receipt client id -> till clients whose captured write-offs its receipts settle
        self.capture_settlers = dict(capture_settlers or {})
        self.event_hooks = list(event_hooks)
        self._unmapped_written: dict[Unmapped, float] = {}
        self.in_flight_lease = in_flight_lease
        self.program = program
        self.clock = clock
        self.subscriptions = tuple(subscriptions)

    # -- plumbing ---------------------------------------------------------------------------

    def _read(self, client_id: str, handler: Callable[[Ctx, Req], R], request: Req) -> R:
        now = self.clock()
        with self.db.read() as session:
            return handler(Ctx(self.db, session, self.program, now, client_id), request)

    def _write(
        self,
        client_id: str,
        key: str,
        kind: OperationKind,
        handler: Callable[[Ctx, Req], R],
        request: Req,
        result_type: type[R],
    ) -> R:
        now = self.clock()

        ctx_holder: list[Ctx] = []

        def run(session: Session) -> R:
            ctx = Ctx(self.db, session, self.program, now, client_id)
            ctx.settles = self.capture_settlers.get(client_id, frozenset())
            ctx_holder.append(ctx)
            return handler(ctx, request)

        def on_result(session: Session, result: R) -> None:
            events = [*ctx_holder[-1].events, *events_for(kind, client_id, result)]
            self.publish_events(session, events, now)

        return run_idempotent(
            self.db,
            client_id=client_id,
            key=key,
            operation=kind.value,
            request=request,
            result_type=result_type,
            now=now,
            run=run,
            on_result=on_result,
        )

    def _till(self, client_id: str, handler: Callable[[Ctx, Req], T], request: Req) -> T:
        """One till call, one transaction (``gateway.ledger.till``): the till sends no key to
        deduplicate on, so these run once per call, serialized by the account's lock."""
        now = self.clock()
        with self.db.write() as session:
            ctx = Ctx(self.db, session, self.program, now, client_id)
            result = handler(ctx, request)
            self.publish_events(session, ctx.events, now)
            return result

    # -- till sessions: reservations and write-offs of points and gift certificates --------

    def till_reserve(self, client_id: str, request: till.TillReserveRequest) -> till.TillReservation:
        return self._till(client_id, till.reserve, request)

    def till_write_off(self, client_id: str, request: till.TillWriteOffRequest) -> HoldResult:
        return self._till(client_id, till.write_off, request)

    def till_unlock(self, client_id: str, request: till.TillUnlockRequest) -> int:
        return self._till(client_id, till.unlock, request)

    def till_remember_cart(self, client_id: str, request: till.TillCartRequest) -> bool:
        return self._till(client_id, till.remember_cart, request)

    def till_reservation(self, client_id: str, card_number: str, tag: str) -> tuple[str | None, int]:
        with self.db.read() as session:
            ctx = Ctx(self.db, session, self.program, self.clock(), client_id)
            return till.reservation(ctx, card_number, tag)

    def till_customers_by_phone_ending(self, client_id: str, digits: str) -> list[CustomerResult]:
        with self.db.read() as session:
            ctx = Ctx(self.db, session, self.program, self.clock(), client_id)
            return till.customers_by_phone_ending(ctx, digits)

    def gift_till_reserve(self, client_id: str, request: till.GiftReserveRequest) -> till.GiftReservation:
        return self._till(client_id, till.gift_reserve, request)

    def gift_till_write_off(self, client_id: str, request: till.GiftWriteOffRequest) -> GiftCardResult:
        return self._till(client_id, till.gift_write_off, request)

    def gift_till_unlock(self, client_id: str, request: till.GiftUnlockRequest) -> int:
        return self._till(client_id, till.gift_unlock, request)

    def publish_events(self, session: Session, events: list[Event], now: datetime) -> None:
        """Outbox messages and event hooks (customer notifications), in the ledger's transaction."""
        publish(session, self.subscriptions, events, now)
        for hook in self.event_hooks:
            hook(session, events, now)

    # -- reads ------------------------------------------------------------------------------

    def calculate(self, client_id: str, request: CalculateRequest) -> CalculateResult:
        return self._read(client_id, calculation.calculate, request)

    def balance(self, client_id: str, request: BalanceRequest) -> BalanceResult:
        return self._read(client_id, lambda ctx, req: balance_of(ctx, find_card(ctx, req.card_number)), request)

    def lookup_customer(self, client_id: str, request: LookupCustomerRequest) -> CustomerResult:
        return self._read(client_id, customers.lookup_customer, request)

    def tier_progress(self, client_id: str, card_number: str) -> TierProgress:
        """The card owner's tier, turnover, next tier and what remains to it (read only)."""

        def read(ctx: Ctx) -> TierProgress:
            card = find_card(ctx, card_number)
            context = pricing_context(ctx, card.account_id, None)
            if not ctx.program.uses_turnover:  # pricing skips the turnover then; the answer shows it
                current, previous = window_turnover(ctx.session, ctx.program, card.account_id, ctx.now)
                context = replace(context, turnover_kopecks=current, previous_turnover_kopecks=previous)
            on = context.on or local_day(ctx.program, ctx.now)
            return tier_progress(ctx.program, card.number, context, on)

        return self._query(client_id, read)

    # -- writes -----------------------------------------------------------------------------

    def hold(self, client_id: str, key: str, request: HoldRequest) -> HoldResult:
        return self._write(client_id, key, OperationKind.HOLD, holds.hold, request, HoldResult)

    def capture(self, client_id: str, key: str, request: CaptureRequest) -> HoldResult:
        return self._write(client_id, key, OperationKind.CAPTURE, holds.capture, request, HoldResult)

    def find_holds(
        self, client_id: str, card_number: str, tag: str | None, statuses: tuple[str, ...] = ("open", "captured")
    ) -> list[HoldResult]:
        """This client's unresolved (by default) holds on a card with a given tag, newest first."""
        now = self.clock()
        with self.db.read() as session:
            ctx = Ctx(self.db, session, self.program, now, client_id)
            return holds.find_holds(ctx, card_number, tag, statuses)

    def find_transaction(self, client_id: str, id_prefix: str) -> FoundTransaction | None:
        """This client's receipt (else hold) whose id starts with ``id_prefix`` — for protocols
        that refer to a transaction by a number derived from its id (SOAP ``TransactionID``)."""
        with self.db.read() as session:
            return find_by_id_prefix(session, client_id, id_prefix)

    def stored_result(self, client_id: str, key: str) -> tuple[str, str] | None:
        """(operation, result JSON) of a request this client completed under ``key``, if any —
        how a protocol that refers to an earlier request by its id finds what it did."""
        with self.db.read() as session:
            row = session.get(IdempotencyKey, (client_id, key))
            if row is None or row.state != "done" or row.result_json is None:
                return None
            return row.operation, row.result_json

    def remember_cart(self, client_id: str, hold_id: str, lines: list[CartLine]) -> None:
        """Attach the last calculated cart to an unresolved hold (overwrites; safe to repeat)."""
        now = self.clock()
        with self.db.write() as session:
            holds.remember_cart(Ctx(self.db, session, self.program, now, client_id), hold_id, lines)

    def commit(self, client_id: str, key: str, request: CommitRequest) -> CommitResult:
        return self._write(client_id, key, OperationKind.COMMIT, receipts.commit, request, CommitResult)

    def offline_commit(self, client_id: str, key: str, request: OfflineReceiptRequest) -> CommitResult:
        return self._write(client_id, key, OperationKind.OFFLINE_COMMIT, receipts.offline_commit, request, CommitResult)

    def cancel(self, client_id: str, key: str, request: CancelRequest) -> CancelResult:
        return self._write(client_id, key, OperationKind.CANCEL, holds.cancel, request, CancelResult)

    def refund(self, client_id: str, key: str, request: RefundRequest) -> RefundResult:
        return self._write(client_id, key, OperationKind.REFUND, refunds.refund, request, RefundResult)

    def register_customer(self, client_id: str, key: str, request: RegisterCustomerRequest) -> CustomerResult:
        return self._write(
            client_id,
            key,
            OperationKind.REGISTER_CUSTOMER,
            customers.register_customer,
            request,
            CustomerResult,
        )

    def issue_card(self, client_id: str, key: str, request: IssueCardRequest) -> CardResult:
        return self._write(client_id, key, OperationKind.ISSUE_CARD, customers.issue_card, request, CardResult)

    def replace_card(self, client_id: str, key: str, request: ReplaceCardRequest) -> CardResult:
        return self._write(client_id, key, OperationKind.REPLACE_CARD, customers.replace_card, request, CardResult)

    def update_customer(self, client_id: str, key: str, request: UpdateCustomerRequest) -> ProfileResult:
        """Change a customer's profile (gateway.ledger.profiles): one transaction, once per key."""
        return self._write(
            client_id, key, OperationKind.UPDATE_CUSTOMER, profiles.update_customer, request, ProfileResult
        )

    def customer_profile(self, client_id: str, customer_id: str) -> ProfileResult:
        return self._read(
            client_id,
            lambda ctx, req: profiles.profile_result(ctx, profiles.customer_of(ctx, req.customer_id)),
            ProfileChangesRequest(customer_id=customer_id),
        )

    def customer_changes(self, client_id: str, request: ProfileChangesRequest) -> ProfileChangesResult:
        return self._read(client_id, profiles.profile_changes, request)

    # -- orders -----------------------------------------------------------------------------

    def apply_order(self, client_id: str, key: str, request: OrderRequest) -> OrderResult:
        """Apply an order's snapshot: post the difference from what its last version posted.
        Idempotent on the key, and on (order, version) whatever the key."""
        return self._write(client_id, key, OperationKind.ORDER, orders.apply_order, request, OrderResult)

    def get_order(self, client_id: str, order_id: str) -> OrderRecord | None:
        now = self.clock()
        with self.db.read() as session:
            return orders.get_order(Ctx(self.db, session, self.program, now, client_id), order_id)

    def order_changes(self, client_id: str, after_sequence: int, limit: int = 100) -> list[OrderRecord]:
        """This client's orders changed after feed number ``after_sequence``, oldest change first."""
        now = self.clock()
        with self.db.read() as session:
            return orders.order_changes(Ctx(self.db, session, self.program, now, client_id), after_sequence, limit)

    # -- gift certificates ------------------------------------------------------------------

    def gift_card_info(self, client_id: str, request: GiftCardInfoRequest) -> GiftCardResult:
        return self._read(client_id, giftcards.info, request)

    def gift_card_issue(self, client_id: str, key: str, request: GiftCardIssueRequest) -> GiftCardResult:
        return self._write(client_id, key, OperationKind.GIFT_CARD_ISSUE, giftcards.issue, request, GiftCardResult)

    def gift_card_hold(self, client_id: str, key: str, request: GiftCardHoldRequest) -> GiftCardResult:
        return self._write(client_id, key, OperationKind.GIFT_CARD_HOLD, giftcards.hold, request, GiftCardResult)

    def gift_card_redeem(self, client_id: str, key: str, request: GiftCardRedeemRequest) -> GiftCardResult:
        return self._write(client_id, key, OperationKind.GIFT_CARD_REDEEM, giftcards.redeem, request, GiftCardResult)

    def gift_card_release(self, client_id: str, key: str, request: GiftCardReleaseRequest) -> GiftCardResult:
        return self._write(client_id, key, OperationKind.GIFT_CARD_RELEASE, giftcards.release, request, GiftCardResult)

    def gift_card_holds(self, client_id: str, number: str, tag: str | None) -> list[tuple[str, str, int, int | None]]:
        """(hold id, status, amount, redeemed) of this client's holds on a certificate, newest first."""
        now = self.clock()
        with self.db.read() as session:
            rows = giftcards.find_holds(Ctx(self.db, session, self.program, now, client_id), number, tag)
            return [
                (
                    r.id,
                    r.status if r.expires_at > now or r.status != "open" else "expired",
                    r.amount_kopecks,
                    r.redeemed_kopecks,
                )
                for r in rows
            ]

    # -- mappings ---------------------------------------------------------------------------

    UNMAPPED_REPORT_INTERVAL = 60.0

    def report_unmapped(self, items: list[Unmapped]) -> None:
        """Record references an adapter could not map (best effort: never fails the caller).

        Each reference is written at most once a minute per process, so a till that keeps
        sending an unmapped item does not turn every calculation into a write; ``seen`` then
        counts minutes in which it was seen rather than requests."""
        now = self.clock().timestamp()
        items = bounded(items)  # a request reports a bounded number of short references
        if len(self._unmapped_written) > 10 * MAX_ROWS:  # the per-process memory of them is bounded too
            self._unmapped_written.clear()
        due = [i for i in items if now - self._unmapped_written.get(i, -1e12) >= self.UNMAPPED_REPORT_INTERVAL]
        if not due:
            return
        try:
            with self.db.write() as session:
                record_unmapped(session, due, self.clock())
            for item in due:
                self._unmapped_written[item] = now
        except Exception:  # reporting must never break a till's request
            log.exception("could not record %d unmapped references", len(due))

    def unmapped(self) -> list[UnmappedRef]:
        with self.db.read() as session:
            return list_unmapped(session)

    # -- accounts: certificates, promo campaigns, merges, company accounts ------------------

    def _query(self, client_id: str, read: Callable[[Ctx], R]) -> R:
        with self.db.read() as session:
            return read(Ctx(self.db, session, self.program, self.clock(), client_id))

    def gift_card_issue_batch(self, client_id: str, key: str, request: GiftCardBatchRequest) -> GiftCardBatchResult:
        return self._write(
            client_id, key, OperationKind.GIFT_CARD_BATCH, giftcard_batches.issue_batch, request, GiftCardBatchResult
        )

    def gift_card_batch(self, client_id: str, batch_id: str) -> GiftCardBatchResult:
        return self._query(client_id, lambda ctx: giftcard_batches.batch(ctx, batch_id))

    def gift_card_set_blocked(self, client_id: str, key: str, request: GiftCardBlockRequest) -> GiftCardResult:
        return self._write(
            client_id, key, OperationKind.GIFT_CARD_BLOCK, giftcards.set_blocked, request, GiftCardResult
        )

    def gift_card_refund(self, client_id: str, key: str, request: GiftCardRefundRequest) -> GiftCardRefundResult:
        return self._write(
            client_id, key, OperationKind.GIFT_CARD_REFUND, giftcards.refund, request, GiftCardRefundResult
        )

    def gift_card_history(self, client_id: str, number: str) -> GiftCardHistoryResult:
        return self._query(client_id, lambda ctx: giftcard_history.history(ctx, number))

    def campaign_create(self, client_id: str, key: str, request: CampaignRequest) -> CampaignResult:
        return self._write(client_id, key, OperationKind.CAMPAIGN_CREATE, campaigns.create, request, CampaignResult)

    def campaign_set_active(self, client_id: str, key: str, request: CampaignActiveRequest) -> CampaignResult:
        return self._write(client_id, key, OperationKind.CAMPAIGN_ACTIVE, campaigns.set_active, request, CampaignResult)

    def campaign_generate(self, client_id: str, key: str, request: CampaignGenerateRequest) -> CampaignBatchInfo:
        """A batch of new codes; the result names the batch only (``campaign_codes`` prints it)."""
        return self._write(
            client_id, key, OperationKind.CAMPAIGN_GENERATE, campaigns.generate, request, CampaignBatchInfo
        )

    def campaign(self, client_id: str, campaign_id: str) -> CampaignResult:
        return self._query(client_id, lambda ctx: campaigns.show(ctx, campaign_id))

    def campaign_codes(self, client_id: str, campaign_id: str, batch_id: str) -> CampaignCodesResult:
        return self._query(client_id, lambda ctx: campaigns.codes(ctx, campaign_id, batch_id))

    def promo_check(self, client_id: str, request: PromoCheckRequest) -> PromoCodeInfo:
        return self._read(client_id, promos.check, request)

    def promo_reserve(self, client_id: str, key: str, request: PromoReserveRequest) -> PromoCodeInfo:
        return self._write(client_id, key, OperationKind.PROMO_RESERVE, promos.reserve, request, PromoCodeInfo)

    def promo_release(self, client_id: str, key: str, request: PromoReleaseRequest) -> PromoCodeInfo:
        return self._write(client_id, key, OperationKind.PROMO_RELEASE, promos.release, request, PromoCodeInfo)

    def merge_customers(self, client_id: str, key: str, request: MergeCustomersRequest) -> MergeResult:
        return self._write(client_id, key, OperationKind.MERGE_CUSTOMERS, merge.merge, request, MergeResult)

    def customer_history(self, client_id: str, customer_id: str, limit: int = 200) -> CustomerHistoryResult:
        return self._query(client_id, lambda ctx: history.customer_history(ctx, customer_id, limit))

    def company_create(self, client_id: str, key: str, request: CompanyRequest) -> CompanyResult:
        return self._write(
            client_id, key, OperationKind.COMPANY_CREATE, companies.create_company, request, CompanyResult
        )

    def company_add_member(self, client_id: str, key: str, request: MemberRequest) -> CompanyResult:
        return self._write(client_id, key, OperationKind.MEMBER_ADD, companies.add_member, request, CompanyResult)

    def company_set_role(self, client_id: str, key: str, request: MemberRoleRequest) -> CompanyResult:
        return self._write(client_id, key, OperationKind.MEMBER_ROLE, companies.set_role, request, CompanyResult)

    def company_remove_member(self, client_id: str, key: str, request: MemberRemoveRequest) -> CompanyResult:
        return self._write(client_id, key, OperationKind.MEMBER_REMOVE, companies.remove_member, request, CompanyResult)

    def company(self, client_id: str, company_id: str) -> CompanyResult:
        return self._query(client_id, lambda ctx: companies.company(ctx, company_id))

    def expire_gift_cards(self, limit: int = 500) -> int:
        """Book what is left on expired certificates (a bounded batch); returns how many."""
        with self.db.write() as session:
            ctx = Ctx(self.db, session, self.program, self.clock(), "system:giftcard-expiry")
            return giftcards.expire_due(ctx, limit)

    def sweep_promo_reservations(self, limit: int = 500) -> int:
        """Mark promo-code reservations past their deadline expired (a bounded batch)."""
        with self.db.write() as session:
            ctx = Ctx(self.db, session, self.program, self.clock(), "system:promo-sweeper")
            return campaign_uses.sweep(ctx, limit)

    # -- maintenance ------------------------------------------------------------------------

    def sweep_expired_holds(self, limit: int | None = None) -> int:
        """Resolve holds past their deadline in one bounded batch (void open ones, book captured
        ones); returns how many were resolved."""
        now = self.clock()
        with self.db.write() as session:
            ctx = Ctx(self.db, session, self.program, now, "system:sweeper")
            resolved = hold_expiry.sweep_expired_holds(ctx, limit or self.program.holds.sweep_batch)
            resolved += giftcards.sweep(ctx, limit or self.program.holds.sweep_batch)
            self.publish_events(session, ctx.events, now)
            return resolved

    def check(self) -> InvariantReport:
        return check_ledger(self.db)
