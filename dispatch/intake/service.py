"""Intake: a grid report or a hotline ticket becomes a located, routed, stored, published case.

intake → locate → route → store → publish: `Intake` validates the body, asks the router where
the point is and who is responsible, builds the case document, stores it and announces it.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

from dispatch import validation as v
from dispatch.workflow.audit import chain_entry
from dispatch.access.auth import User
from dispatch.domain import CHANNELS, LEVELS, TICKET_TYPES, masked_search_text, scope_path
from dispatch.access.policy import in_scope
from dispatch.errors import ApiError, bad_request, conflict, forbidden, unprocessable
from dispatch.intake.attachments import check_photos
from dispatch.rules import OutsideCity
from dispatch.store import DuplicateCase, new_case_id
from geo.geocode import plate_of


@dataclass
class IntakeResult:
    case: dict
    created: bool


class Intake:
    def __init__(self, ctx, clock):
        self.ctx = ctx
        self.clock = clock  # the application's one clock (dispatch.clock.Clock)

    # -- public entry points ----------------------------------------------------------------

    async def report(self, user: User, body: dict) -> IntakeResult:
        if user.role != "grid_worker":
            raise forbidden("只有网格员可以上报网格案件", code="role_forbidden")
        code = v.text(body, "category", required=True, max_len=32, allow_empty=False)
        description = v.text(body, "description", max_len=2000, default="")
        lnglat = v.point(body, "location", required=True)
        address = v.text(body, "address", max_len=200)
        photos = v.string_list(body, "photos", max_items=9)
        client_id = v.text(body, "client_id", max_len=64, allow_empty=False)

        digest = intake_digest("report", category=code, description=description, location=lnglat,
                               address=address, photos=photos)
        existing = await self._existing(user, client_id)
        if existing:
            return replay(existing, digest)
        category = self._category(code, kinds=("component", "event"))
        await check_photos(self.ctx, user, photos)
        decision = self._route(lnglat, category.code, "grid", description)
        self._check_scope(user, decision)
        fields = {
            "source": "grid",
            "channel": None,
            "type": None,
            "description": description,
            "address": address,
            "caller": None,
            "photos": photos,
            "intake_digest": digest,
        }
        return await self._store(user, client_id, category, lnglat, decision, fields)

    async def ticket(self, user: User, body: dict) -> IntakeResult:
        if user.role != "operator":
            raise forbidden("只有热线受理员可以登记工单", code="role_forbidden")
        channel = v.choice(body, "channel", CHANNELS, default="12345")
        ticket_type = v.choice(body, "type", TICKET_TYPES, required=True)
        content = v.text(body, "content", required=True, max_len=4000, allow_empty=False)
        caller = self._caller(body.get("caller"))
        code = v.text(body, "category", max_len=32, allow_empty=False)
        address = v.text(body, "address", max_len=200)
        lnglat = v.point(body, "location")
        client_id = v.text(body, "client_id", max_len=64, allow_empty=False)

        digest = intake_digest("ticket", channel=channel, type=ticket_type, content=content, caller=caller,
                               category=code, address=address, location=lnglat)
        existing = await self._existing(user, client_id)
        if existing:
            return replay(existing, digest)
        category = self._category(code, kinds=None) if code else self._ticket_category(ticket_type)
        geocoded = None
        if lnglat is None and address:
            geocoded = self.ctx.city.addresses.lookup(address)
            if geocoded:
                lnglat = (geocoded[0], geocoded[1])
        text = " ".join(filter(None, [content, address]))
        decision = self._route(lnglat, category.code, "hotline", text) if lnglat else None
        fields = {
            "source": "hotline",
            "channel": channel,
            "type": ticket_type,
            "description": content,
            "address": address,
            "caller": caller,
            "photos": [],
            "intake_digest": digest,
        }
        if geocoded:
            fields["geocoded_from"] = geocoded[2]
        return await self._store(user, client_id, category, lnglat, decision, fields)

    # -- steps ------------------------------------------------------------------------------

    async def _existing(self, user: User, client_id: str | None) -> dict | None:
        if not client_id:
            return None
        return await self.ctx.cases.by_client_id(user.username, client_id)

    def _check_scope(self, user: User, decision) -> None:
        """A grid worker reports incidents in their own jurisdiction (SPEC: "in their grid"): the
        grid, or the community or street the account is scoped to. Elsewhere it is somebody
        else's patch, and the reporter would keep reading a case they cannot act on."""
        city = self.ctx.city
        path = scope_path(city.id, decision.jurisdiction)
        if in_scope(user, {"scope_path": path}, city.id):
            return
        place = _place_name(decision.jurisdiction) or "辖区之外"
        mine = city.jurisdictions[user.scope].name if user.scope in city.jurisdictions else user.scope
        raise ApiError(403, "outside_scope", f"上报地点位于{place}，不在您的辖区（{mine}）内，网格员只能上报本辖区的事件",
                       field="location")

    def _category(self, code: str, kinds):
        category = self.ctx.city.categories.get(code)
        if category is None:
            raise unprocessable(f"未知的案件类别代码 {code}", code="unknown_category", field="category")
        if kinds and category.kind not in kinds:
            raise unprocessable(
                f"类别 {code}（{category.name}）是{category.kind}类，不能用于此入口",
                code="wrong_category_kind", field="category",
            )
        return category

    def _ticket_category(self, ticket_type: str):
        """The city's default category for this ticket type (categories.yaml `ticket_type`)."""
        for category in self.ctx.city.categories.values():
            if category.ticket_type == ticket_type:
                return category
        raise unprocessable(f"本市没有为“{ticket_type}”类工单配置默认类别，请指定 category",
                            code="category_required", field="category")

    @staticmethod
    def _caller(value) -> dict:
        if value is None:
            return {"name": None, "phone": None}
        if not isinstance(value, dict):
            raise bad_request("字段 caller 必须是 {name, phone} 对象", code="invalid_type", field="caller")
        name = v.text(value, "name", max_len=50)
        phone = v.text(value, "phone", max_len=20)
        if phone and not re.fullmatch(r"\+?[0-9][0-9\- ]{2,19}", phone):
            raise bad_request("来电号码格式无效", code="invalid_value", field="caller.phone")
        return {"name": name, "phone": phone}

    def _route(self, lnglat, code: str, source: str, text: str):
        try:
            return self.ctx.router.route(lnglat[0], lnglat[1], code, source=source, text=text, at=self.clock.now())
        except OutsideCity as exc:
            raise unprocessable(str(exc), code="outside_city", field="location") from None

    async def _store(self, user: User, client_id, category, lnglat, decision, fields) -> IntakeResult:
        ctx = self.ctx
        now = self.clock.now()
        case_id = new_case_id()
        jurisdiction = decision.jurisdiction if decision else None
        priority = decision.priority if decision else category.priority
        case = {
            "_id": case_id,
            "number": await ctx.cases.next_number(now.astimezone(ctx.tz).strftime("%Y%m%d")),
            **fields,
            "category": {"code": category.code, "name": category.name, "kind": category.kind},
            "status": "reported",
            "priority": priority,
            "location": {"type": "Point", "coordinates": [lnglat[0], lnglat[1]]} if lnglat else None,
            "jurisdiction": jurisdiction,
            "scope_path": scope_path(ctx.city.id, jurisdiction),
            "routing": decision.as_dict() if decision else None,
            "assignment": {
                "department": decision.department if decision else None,
                "rule": decision.rule if decision else None,
                "reason": decision.reason if decision else "缺少位置信息，待补充定位后派遣",
            },
            "deadlines": {"sign_by": None, "handle_by": None, "check_by": None},
            "flags": {
                "warning": False, "overdue": False, "supervised": False, "escalated_to": None,
                "verified": False, "extension_pending": False, "needs_location": lnglat is None,
            },
            "counters": {"returns": 0, "reworks": 0, "extensions": 0},
            "departments_seen": [],
            "clock": None,
            "reporters": [user.username],
            "created_by": user.username,
            "client_id": client_id,
            "created_at": now,
            "updated_at": now,
            "version": 1,
            "history": [],
        }
        case["history"].append(chain_entry(case["history"], {
            "at": now, "by": user.username, "by_name": user.name or user.username, "action": "report", "from": None, "to": "reported",
            "note": "网格上报" if fields["source"] == "grid" else f"{fields['channel']} 热线登记",
        }))
        if category.auto_dispatch and decision and decision.department:
            ctx.workflow.auto_dispatch(case, category, now)
        case["place"] = place_of(ctx.city, lnglat, jurisdiction)
        case["search_masked"] = masked_search_text(case)
        try:
            await ctx.cases.insert(case)
        except DuplicateCase:
            # Two retries of one submission raced; the first one stored wins.
            stored = await ctx.cases.by_client_id(user.username, client_id) if client_id else None
            if stored is None:
                raise ApiError(500, "storage_error", "保存案件失败，请重试") from None
            return replay(stored, fields["intake_digest"])
        await ctx.attachments.mark_referenced(fields["photos"])
        return IntakeResult(case, True)


def place_of(city, lnglat, jurisdiction: dict | None) -> dict | None:
    """Where a located case is, in words: the nearest door plate (reverse geocoded, if one is
    within 200 m) and the community, e.g. {"text": "东坡路3号附近（约 20 米）· 东坡路社区"}."""
    if not lnglat:
        return None
    hit = city.addresses.nearest(lnglat[0], lnglat[1])
    community = ((jurisdiction or {}).get("community") or {}).get("name")
    plate = None
    if hit:
        address, metres = hit
        plate = {"address": address, "distance_m": metres}
    parts = []
    if plate:
        short = plate_text(city.addresses, plate["address"])
        parts.append(short if plate["distance_m"] < 10 else f"{short}附近（约 {plate['distance_m']} 米）")
    if community:
        parts.append(community)
    return {"door_plate": plate, "community": community, "text": " · ".join(parts) or None}


def plate_text(book, address: str) -> str:
    """The door plate without its district/street prefixes: 上城区湖滨街道东坡路3号 → 东坡路3号."""
    return plate_of(book.normalize(address))[1] or address


def _place_name(jurisdiction: dict | None) -> str:
    """上城区湖滨街道青年路社区 009 网格: the names district first, a name left out when the next
    one repeats it (grids are named after their community)."""
    names = [node["name"] for node in ((jurisdiction or {}).get(level) for level in LEVELS) if node]
    return "".join(n for n, following in zip(names, names[1:] + [""]) if not following.startswith(n))


def intake_digest(entry: str, **fields) -> str:
    """A canonical digest of what a submission says (its checked fields, not their spelling in
    JSON): a retry with the same client_id must say the same thing."""
    canonical = json.dumps({"entry": entry, **fields}, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def replay(stored: dict, digest: str) -> IntakeResult:
    """The case a client_id already made, if this submission is the same one again; else 409.

    Cases stored before digests existed have none and are returned as before."""
    if stored.get("intake_digest") not in (None, digest):
        raise conflict(
            f"此 client_id 已用于内容不同的另一次提交（案件 {stored.get('number')}）；新的提交请使用新的 client_id",
            code="client_id_conflict", case_id=stored["_id"], number=stored.get("number"),
        )
    return IntakeResult(stored, False)
