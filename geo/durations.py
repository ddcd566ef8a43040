"""Time-limit durations (SPEC §2): ``30s``, ``15m``, ``4h``, ``3d`` (natural clock) and
``4wh``, ``1.5wd`` (working clock).

A leaf module: parsing a duration needs no calendar, so the city loader (geo.loader) can check
``categories.yaml`` limits with the very parser the deadline arithmetic uses
(dispatch.workflow.deadlines imports it from here) without geo importing dispatch.
Only ``wd`` depends on a city (the length of its working day); pass ``working_day_seconds``
or use ``BusinessCalendar.parse_duration``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Union

NATURAL = "natural"
WORKING = "working"

# Only used when a `wd` duration is parsed without a calendar; BusinessCalendar.parse_duration
# and BusinessCalendar.add always use the city's own day length instead.
DEFAULT_WORKING_DAY_SECONDS = 7.5 * 3600

# Seconds per unit on the unit's own clock; `wd` is resolved against a working-day length.
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "wh": 3600}
_UNIT_CLOCK = {"s": NATURAL, "m": NATURAL, "h": NATURAL, "d": NATURAL, "wh": WORKING, "wd": WORKING}
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(wd|wh|s|m|h|d)")

# A time limit longer than this is a configuration mistake, and refusing it keeps a typo
# like `99999999wd` from turning one `add` into an hours-long loop.
MAX_DURATION_SECONDS = 10 * 366 * 86400


@dataclass(frozen=True)
class Duration:
    """A parsed time limit: `amount` of `symbol` units, `seconds` long on its `unit` clock."""

    amount: Decimal
    unit: str  # NATURAL | WORKING
    seconds: float
    symbol: str = "s"  # s | m | h | d | wh | wd — kept so `wd` can be re-measured per city

    @classmethod
    def natural(cls, seconds: float) -> "Duration":
        return cls(Decimal(str(seconds)), NATURAL, float(seconds), "s")

    @classmethod
    def working(cls, seconds: float) -> "Duration":
        """A working-clock duration given in working seconds (e.g. a remaining balance)."""
        return cls(Decimal(str(seconds)) / 3600, WORKING, float(seconds), "wh")

    def __str__(self) -> str:
        return f"{self.amount.normalize():f}{self.symbol}"


DurationLike = Union[Duration, str]


def parse_duration(text: DurationLike, working_day_seconds: float = DEFAULT_WORKING_DAY_SECONDS) -> Duration:
    """Parse `30s`, `15m`, `4h`, `3d` (natural) or `4wh`, `1.5wd` (working clock).

    `working_day_seconds` is the length of one working day for `wd`; pass the city's (or use
    `BusinessCalendar.parse_duration`). A `Duration` passes through unchanged.
    """
    if isinstance(text, Duration):
        return text
    if not isinstance(text, str):
        raise ValueError(f"时长 {text!r} 无效：应为字符串，如 '4wh'、'1wd'、'2h'、'3d'")
    match = _DURATION_RE.fullmatch(text.strip())
    if not match:
        raise ValueError(
            f"时长 {text!r} 无效：应为数字加单位（s、m、h、d 为自然时间的秒、分、时、天；"
            "wh 为工作小时，wd 为工作日），如 '4wh'、'1.5wd'、'2h'"
        )
    try:
        amount = Decimal(match.group(1))
    except InvalidOperation:  # pragma: no cover - the regex only lets valid decimals through
        raise ValueError(f"时长 {text!r} 无效：数字有误") from None
    symbol = match.group(2)
    per_unit = Decimal(str(working_day_seconds)) if symbol == "wd" else Decimal(_UNIT_SECONDS[symbol])
    seconds = amount * per_unit
    if seconds > MAX_DURATION_SECONDS:
        raise ValueError(f"时长 {text!r} 无效：超过 {MAX_DURATION_SECONDS // 86400} 天的上限")
    return Duration(amount, _UNIT_CLOCK[symbol], float(seconds), symbol)
