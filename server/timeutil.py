"""China time.  China has one zone and no daylight saving, so a fixed +08:00 offset is exact
and needs no tz database (slim containers often lack one)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")


def to_local(value: datetime) -> datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(CHINA)


def local_now() -> datetime:
    return datetime.now(CHINA)


def fmt_local(value: datetime | None, pattern: str = "%Y-%m-%d %H:%M") -> str:
    return to_local(value).strftime(pattern) if value else ""
