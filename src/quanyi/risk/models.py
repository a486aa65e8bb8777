"""Risk tables. For now: fixed-window counters for rate limits (shared by every process)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from quanyi.db import Base

__all__ = ["RateCounter"]


class RateCounter(Base):
    __tablename__ = "risk_rate_counter"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # unix seconds
    count: Mapped[int] = mapped_column(Integer, default=0)
