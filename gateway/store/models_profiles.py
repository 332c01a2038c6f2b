"""Who changed a customer's profile, what (old → new, personal data masked) and when."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from gateway.store.models import _pk, _ts


class ProfileChange(SQLModel, table=True):
    __tablename__ = "customer_profile_changes"
    __table_args__ = (Index("ix_customer_profile_changes_customer", "customer_id", "id"),)

    id: int | None = Field(default=None, sa_column=_pk())
    customer_id: str = Field(foreign_key="customers.id", max_length=36)
    client_id: str = Field(max_length=64, description="The client whose call changed it")
    field: str = Field(max_length=32)
    # Masked already when personal (phone, e-mail, name, birth date): the audit trail must not
    # become a second copy of the personal data.
    old_value: str | None = Field(default=None, max_length=256)
    new_value: str | None = Field(default=None, max_length=256)
    created_at: datetime = Field(sa_column=_ts())
