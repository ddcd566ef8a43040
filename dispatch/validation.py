"""Strict checks for request bodies and query values.

Every value that reaches a query goes through one of these, so a client can never slip an
operator (`{"$ne": 1}`) or a field name into MongoDB: strings are strings, numbers are numbers.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from datetime import date, datetime, timezone

from dispatch.errors import bad_request

_MISSING = object()


def text(body: dict, key: str, *, required: bool = False, max_len: int = 2000, default=None,
         allow_empty: bool = True) -> str | None:
    value = body.get(key, _MISSING)
    if value is _MISSING or value is None:
        if required:
            raise bad_request(f"缺少字段 {key}", code="missing_field", field=key)
        return default
    if not isinstance(value, str):
        raise bad_request(f"字段 {key} 必须是字符串", code="invalid_type", field=key)
    value = value.strip()
    if not value and (required and not allow_empty):
        raise bad_request(f"字段 {key} 不能为空", code="missing_field", field=key)
    if len(value) > max_len:
        raise bad_request(f"字段 {key} 过长（最多 {max_len} 字）", code="too_long", field=key)
    if "\x00" in value:
        raise bad_request(f"字段 {key} 含有非法字符", code="invalid_value", field=key)
    return value


def choice(body: dict, key: str, options, *, required: bool = False, default=None) -> str | None:
    value = text(body, key, required=required, max_len=64, default=default, allow_empty=False)
    if value is not None and value not in options:
        raise bad_request(
            f"字段 {key} 的值 {value!r} 无效，可选: {', '.join(options)}",
            code="invalid_value", field=key,
        )
    return value


def boolean(body: dict, key: str, *, default: bool | None = None) -> bool | None:
    value = body.get(key, default)
    if value is not None and not isinstance(value, bool):
        raise bad_request(f"字段 {key} 必须是 true 或 false", code="invalid_type", field=key)
    return value


def string_list(body: dict, key: str, *, max_items: int = 20, max_len: int = 64) -> list[str]:
    value = body.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and 0 < len(v) <= max_len for v in value):
        raise bad_request(f"字段 {key} 必须是字符串数组", code="invalid_type", field=key)
    if len(value) > max_items:
        raise bad_request(f"字段 {key} 最多 {max_items} 项", code="too_long", field=key)
    return value


def coordinate_pair(lng, lat, field: str = "location") -> tuple[float, float]:
    for value in (lng, lat):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise bad_request(f"{field} 的坐标必须是有限数字", code="invalid_location", field=field)
    if not (-180 <= lng <= 180 and -90 <= lat <= 90):
        raise bad_request(
            f"{field} 的坐标超出范围（经度 -180~180，纬度 -90~90）", code="invalid_location", field=field
        )
    return float(lng), float(lat)


def point(body: dict, key: str = "location", *, required: bool = False) -> tuple[float, float] | None:
    """A GeoJSON Point `{type: "Point", coordinates: [lng, lat]}` → (lng, lat)."""
    value = body.get(key)
    if value is None:
        if required:
            raise bad_request(f"缺少字段 {key}", code="missing_field", field=key)
        return None
    if (
        not isinstance(value, dict)
        or value.get("type") != "Point"
        or not isinstance(value.get("coordinates"), list)
        or len(value["coordinates"]) not in (2, 3)
    ):
        raise bad_request(
            f'字段 {key} 必须是 GeoJSON 点: {{"type": "Point", "coordinates": [经度, 纬度]}}',
            code="invalid_location", field=key,
        )
    return coordinate_pair(value["coordinates"][0], value["coordinates"][1], key)


def query_float(raw: str | None, name: str) -> float | None:
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise bad_request(f"参数 {name} 必须是数字", code="invalid_parameter", field=name) from None
    if not math.isfinite(value):
        raise bad_request(f"参数 {name} 必须是有限数字", code="invalid_parameter", field=name)
    return value


def query_int(raw: str | None, name: str, *, default: int, low: int, high: int) -> int:
    if raw is None or raw == "":
        return default
    if not re.fullmatch(r"\d{1,9}", raw):
        raise bad_request(f"参数 {name} 必须是整数", code="invalid_parameter", field=name)
    value = int(raw)
    if not low <= value <= high:
        raise bad_request(f"参数 {name} 必须在 {low}~{high} 之间", code="invalid_parameter", field=name)
    return value


# Instants the platform can hold and compute with: a year outside this range in a query is a
# mistake or a probe, and at year 1 or 9999 an offset or a day added leaves datetime's range.
MIN_YEAR, MAX_YEAR = 1900, 2999


def iso_instant(raw: str, tz) -> tuple[datetime, bool]:
    """(aware instant, is_bare_date) from an ISO date or date-time; a bare date or naive time is
    read in `tz`. ValueError for anything unparsable or outside MIN_YEAR..MAX_YEAR."""
    raw = raw.strip()
    if len(raw) == 10:
        value, bare = datetime.combine(date.fromisoformat(raw), datetime.min.time(), tz), True
    else:
        value, bare = datetime.fromisoformat(raw.replace("Z", "+00:00")), False
        if value.tzinfo is None:
            value = value.replace(tzinfo=tz)
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise ValueError("year out of range")
    return value, bare


def query_time(raw: str | None, name: str, tz) -> datetime | None:
    """ISO date or date-time; a bare date or naive time is read in the city's timezone."""
    if raw is None or raw == "":
        return None
    try:
        value, _ = iso_instant(raw, tz)
    except ValueError:
        raise bad_request(
            f"参数 {name} 必须是 {MIN_YEAR}–{MAX_YEAR} 年间的 ISO 日期或时间，如 2026-11-22 或 "
            "2026-11-22T08:30:00+08:00",
            code="invalid_parameter", field=name,
        ) from None
    return value.astimezone(timezone.utc)


def query_bool(raw: str | None, name: str) -> bool | None:
    if raw is None or raw == "":
        return None
    lowered = raw.lower()
    if lowered in ("1", "true", "yes"):
        return True
    if lowered in ("0", "false", "no"):
        return False
    raise bad_request(f"参数 {name} 必须是 true 或 false", code="invalid_parameter", field=name)


def query_list(raw: str | None, name: str, options=None, max_items: int = 20) -> list[str]:
    if raw is None or raw == "":
        return []
    # Counted and measured as sent (OpenAPI: at most `max_items` comma-separated parts of ≤ 64
    # characters each); blank parts are then dropped.
    parts = raw.split(",")
    items = [item.strip() for item in parts if item.strip()]
    if len(parts) > max_items or any(len(part) > 64 for part in parts):
        raise bad_request(f"参数 {name} 取值过多或过长", code="invalid_parameter", field=name)
    if options is not None:
        bad = [item for item in items if item not in options]
        if bad:
            raise bad_request(
                f"参数 {name} 的值 {', '.join(bad)} 无效，可选: {', '.join(options)}",
                code="invalid_parameter", field=name,
            )
    return items


def query_bbox(raw: str | None, name: str = "bbox") -> tuple[float, float, float, float] | None:
    """`west,south,east,north` in degrees, or None when absent."""
    if raw is None or raw == "":
        return None
    parts = raw.split(",")
    if len(parts) != 4:
        raise bad_request(f"参数 {name} 应为 最小经度,最小纬度,最大经度,最大纬度", code="invalid_parameter", field=name)
    west, south, east, north = (query_float(p, name) for p in parts)
    coordinate_pair(west, south, name)
    coordinate_pair(east, north, name)
    if west >= east or south >= north:
        raise bad_request(f"参数 {name} 的最小值必须小于最大值", code="invalid_parameter", field=name)
    return west, south, east, north


# Cursor millis must stay inside the years `iso_instant` accepts, so turning them back into a
# datetime cannot overflow.
_MAX_CURSOR_MILLIS = int(datetime(MAX_YEAR, 12, 31, tzinfo=timezone.utc).timestamp() * 1000)
_MAX_CURSOR_CHARS = 200


def query_cursor(raw: str) -> tuple[int, str]:
    """A list cursor (base64 of `[created_at millis, case id]`) → (millis, case_id), or 400."""
    invalid = bad_request("参数 cursor 无效", code="invalid_parameter", field="cursor")
    # Bounded before decoding: a long cursor could hold JSON nested deep enough to exhaust the parser.
    if len(raw) > _MAX_CURSOR_CHARS:
        raise invalid
    try:
        value = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (ValueError, binascii.Error, RecursionError):
        raise invalid from None
    if not (isinstance(value, list) and len(value) == 2):
        raise invalid
    millis, case_id = value
    if isinstance(millis, bool) or not isinstance(millis, int) or not 0 <= millis <= _MAX_CURSOR_MILLIS:
        raise invalid
    if not isinstance(case_id, str) or not 0 < len(case_id) <= 64:
        raise invalid
    return millis, case_id


EARTH_RADIUS_M = 6371008.8
MAX_NEAR_M = 5000


def query_near(raw: str) -> tuple[float, float, float]:
    """`lng,lat,metres` (metres 0 < r ≤ 5000) → (lng, lat, radius), or 400.

    The box around the circle must stay inside ±180/±90: no city lies on a pole or the
    antimeridian, and a box past them is not a valid polygon for the store."""
    parts = raw.split(",")
    if len(parts) != 3 or not all(p.strip() for p in parts):
        raise bad_request("参数 near 应为 经度,纬度,半径米", code="invalid_parameter", field="near")
    lng, lat, radius = (query_float(p.strip(), "near") for p in parts)
    coordinate_pair(lng, lat, "near")
    if not 0 < radius <= MAX_NEAR_M:
        raise bad_request(f"参数 near 的半径必须在 0~{MAX_NEAR_M} 米之间", code="invalid_parameter", field="near")
    dlat = math.degrees(radius / EARTH_RADIUS_M)
    dlng = dlat / max(math.cos(math.radians(lat)), 0.01)
    if abs(lat) + dlat >= 90 or abs(lng) + dlng > 180:
        raise bad_request("参数 near 的范围越过了南北极或 180° 经线", code="invalid_parameter", field="near")
    return lng, lat, radius
