"""``catalogue:`` — what the rules know about goods, prices and stores.

* **price types** (1C «Виды цен»): each line may carry one, by our code or by its 1C GUID; each
  has its own accrual (a fixed percent, or a factor of the customer's rate) and its own share
  payable by points;
* **kinds** of goods: a tree (a kind may have a ``parent``), goods assigned by exact item code
  or by code prefix (a 1C goods group usually shares a prefix); the longest prefix wins;
* **zones**: stores grouped into geographic zones.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, PrivateAttr, model_validator

from gateway.core.rules.base import Code, Factor, Percent, Ref, Section


class PriceType(Section):
    code: Code
    name: str | None = Field(default=None, max_length=150)
    refs: list[Ref] = Field(default_factory=list, description="1C GUIDs (or names) the tills send for it")
    accrual_percent: Percent | None = Field(
        default=None, description="Fixed accrual percent for lines of this price type (the tier's rate is ignored)"
    )
    accrual_factor: Factor | None = Field(
        default=None, description="The customer's rate (tier or program) is multiplied by this"
    )
    max_share_percent: Percent | None = Field(default=None, description="At most this share payable by points")

    @model_validator(mode="after")
    def _one_accrual(self) -> PriceType:
        if self.accrual_percent is not None and self.accrual_factor is not None:
            raise ValueError("give at most one of accrual_percent and accrual_factor")
        return self


class Kind(Section):
    code: Code
    name: str | None = Field(default=None, max_length=150)
    parent: Code | None = Field(default=None, description="The kind this one belongs to")
    items: list[Ref] = Field(default_factory=list, description="Item codes of this kind")
    prefixes: list[Ref] = Field(default_factory=list, description="Item codes starting with one of these")
    max_share_percent: Percent | None = None
    pending_until_shipment: bool = Field(
        default=False, description="Points earned on these goods wait for their shipment (orders)"
    )


class Zone(Section):
    code: Code
    name: str | None = Field(default=None, max_length=150)
    stores: list[Ref] = Field(default_factory=list, description="Store codes or 1C GUIDs of the zone's stores")


class Catalogue(Section):
    price_types: list[PriceType] = Field(default_factory=list)
    default_price_type: Code | None = Field(default=None, description="For lines without a known price type")
    kinds: list[Kind] = Field(default_factory=list)
    default_kind: Code | None = Field(default=None, description="For goods no kind claims")
    zones: list[Zone] = Field(default_factory=list)
    default_zone: Code | None = Field(default=None, description="For stores no zone lists")

    _items: dict[str, str] = PrivateAttr(default_factory=dict)
    _prefixes: list[tuple[str, str]] = PrivateAttr(default_factory=list)
    _price_refs: dict[str, str] = PrivateAttr(default_factory=dict)
    _stores: dict[str, str] = PrivateAttr(default_factory=dict)
    _chains: dict[str, tuple[str, ...]] = PrivateAttr(default_factory=dict)

    def model_post_init(self, context: Any, /) -> None:
        for kind in self.kinds:
            for item in kind.items:
                self._items.setdefault(item, kind.code)
            for prefix in kind.prefixes:
                self._prefixes.append((prefix, kind.code))
        self._prefixes.sort(key=lambda pair: -len(pair[0]))
        for price_type in self.price_types:
            self._price_refs.setdefault(price_type.code, price_type.code)
            for ref in price_type.refs:
                self._price_refs.setdefault(ref.lower(), price_type.code)
        for zone in self.zones:
            for store in zone.stores:
                self._stores.setdefault(store.lower(), zone.code)
        parents = {kind.code: kind.parent for kind in self.kinds}
        for code in parents:
            chain = [code]
            while (parent := parents.get(chain[-1])) is not None and parent not in chain:
                chain.append(parent)
            self._chains[code] = tuple(chain)

    # -- lookups ----------------------------------------------------------------------------

    def kind_of(self, item: str) -> str | None:
        kind = self._items.get(item)
        if kind is not None:
            return kind
        for prefix, code in self._prefixes:
            if item.startswith(prefix):
                return code
        return self.default_kind

    def kind_chain(self, kind: str | None) -> tuple[str, ...]:
        """The kind and every kind above it, nearest first."""
        if kind is None:
            return ()
        return self._chains.get(kind, (kind,))

    def price_type_of(self, value: str | None) -> str | None:
        if value is not None:
            found = self._price_refs.get(value) or self._price_refs.get(value.lower())
            if found is not None:
                return found
        return self.default_price_type

    def zone_of(self, store: str | None) -> str | None:
        if store is not None:
            found = self._stores.get(store.lower())
            if found is not None:
                return found
        return self.default_zone

    def price_type(self, code: str | None) -> PriceType | None:
        return next((p for p in self.price_types if p.code == code), None)

    def kind(self, code: str) -> Kind | None:
        return next((k for k in self.kinds if k.code == code), None)
