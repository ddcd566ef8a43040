"""The HTTP API described in OpenAPI 3.1, served at GET /api/openapi.json.

The description is declarative: `OPERATIONS` lists every operation with the permission its
handler declares, its parameters, body and responses; `document()` assembles them with the
shared schemas. The action bodies are derived from the closed loop's own table
(`dispatch.workflow.transitions.TABLE`), so they cannot drift from it. tests/test_openapi.py checks that
every route of `dispatch.handlers.routes()` and every method it implements is described here
with the same permission, and runs schemathesis against the document.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dispatch.access.auth import ROLES
from dispatch.domain import CHANNELS, LEVELS, SOURCES, STATUSES, TICKET_TYPES
from dispatch.access.policy import PERMISSIONS, PUBLIC
from dispatch.workflow.transitions import TABLE

CASE_ID = {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}
ATTACHMENT_ID = {"type": "string", "pattern": "^[A-Za-z0-9_-]{24,64}$"}
USERNAME = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{1,63}$"}


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: dict) -> dict:
    if set(schema) == {"type"} and isinstance(schema["type"], str):
        return {"type": [schema["type"], "null"]}
    return {"anyOf": [schema, {"type": "null"}]}


def or_empty(schema: dict) -> dict:
    """A query parameter the server reads as absent when it is sent empty (`scope=` from a form
    left at its default)."""
    return {"anyOf": [schema, {"type": "string", "maxLength": 0}]}


def obj(properties: dict, required: tuple = (), **extra) -> dict:
    out = {"type": "object", "properties": properties}
    if required:
        out["required"] = list(required)
    out.update(extra)
    return out


STRING = {"type": "string"}
# The server refuses NUL in any text field, and measures and checks a text after trimming it.
NO_NUL = "^[^\\u0000]*$"
NOT_BLANK = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"


def text(max_len: int, required: bool = False) -> dict:
    """A text field as `dispatch.validation.text` reads it (required ones may not be blank)."""
    out = {"type": "string", "maxLength": max_len, "pattern": NO_NUL}
    if required:
        out.update(minLength=1, pattern=NOT_BLANK)
    else:
        out["type"] = ["string", "null"]  # an optional text sent as null is read as absent
    return out


# ISO dates and instants in the years the server computes with (validation.MIN_YEAR..MAX_YEAR).
_DAY = "(19|2[0-9])[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
DAY = {"type": "string", "format": "date", "pattern": f"^{_DAY}$"}
INSTANT = {"type": "string", "format": "date-time",
           "pattern": f"^{_DAY}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{{3}}|\\.[0-9]{{6}})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"}
DAY_OR_INSTANT = {"anyOf": [DAY, INSTANT]}

# Coordinates as query text: decimal degrees.
_FRACTION = "(\\.[0-9]{1,8})?"
_LNG = f"-?(180(\\.0{{1,8}})?|(1[0-7][0-9]|[1-9]?[0-9]){_FRACTION})"
_LAT = f"-?(90(\\.0{{1,8}})?|[1-8]?[0-9]{_FRACTION})"
BBOX = {"type": "string", "pattern": f"^{_LNG},{_LAT},{_LNG},{_LAT}$",
        "description": "最小经度,最小纬度,最大经度,最大纬度（最小值须小于最大值）"}
# A circle of ≤ 5 km whose box stays off the poles and the antimeridian (validation.query_near).
NEAR = {"type": "string",
        "pattern": f"^-?(1[0-6][0-9]|[1-9]?[0-9]){_FRACTION},-?[1-7]?[0-9]{_FRACTION},"
                   "(5000|([1-9][0-9]{0,2}|[1-4][0-9]{3})(\\.[0-9]{1,3})?)$"}


def csv(options=None, max_items: int = 20) -> dict:
    """A comma-separated list as `dispatch.validation.query_list` reads it: at most `max_items`
    parts of at most 64 characters (or, with options, each part one of them or empty)."""
    part = "[^,]{0,64}" if options is None else "(" + "|".join(options) + ")?"
    return {"type": "string", "pattern": f"^{part}(,{part}){{0,{max_items - 1}}}$"}
NSTRING = {"type": ["string", "null"]}
BOOL = {"type": "boolean"}
INT = {"type": "integer"}
NAMED = obj({"id": STRING, "name": STRING}, ("id", "name"))

# --------------------------------------------------------------------------------------------
# Shared schemas
# --------------------------------------------------------------------------------------------

POINT = obj(
    {"type": {"const": "Point"},
     # Each coordinate within ±180; the latitude's ±90 is in the description only, because the
     # tuple form (prefixItems) breaks schemathesis 4.32's response validator.
     "coordinates": {"type": "array", "minItems": 2, "maxItems": 3,
                     "items": {"type": "number", "minimum": -180, "maximum": 180},
                     "description": "[经度 -180~180, 纬度 -90~90]"}},
    ("type", "coordinates"),
)

ERROR = obj({"error": obj({"code": STRING, "message": STRING}, ("code", "message"))}, ("error",))

USER = obj({"username": STRING, "role": {"enum": list(ROLES)}, "scope": STRING, "department": NSTRING,
            "name": NSTRING}, ("username", "role", "scope"))

JURISDICTION = nullable(obj({level: nullable(NAMED) for level in LEVELS}))

# dispatch.workflow.stageclock.timer: the running stage clock, counted on the limit's own clock.
TIMER = nullable(obj(
    {
        "stage": {"enum": ["sign", "handle", "check"]},
        "unit": {"enum": ["working", "natural"], "description": "时限按工作时间还是自然时间计"},
        "due_at": STRING, "warn_at": STRING, "paused": BOOL,
        "remaining_seconds": {"type": "integer", "description": "as_of 时刻的剩余时间（秒，按 unit 计；超期为负）"},
        "as_of": STRING,
        "runs_until": {**NSTRING, "description": "自 as_of 起计时连续走到的时刻（当前工作时段结束）；"
                       "自然时间为 null（一直走），非工作时间或暂停时等于 as_of"},
        "level": {"enum": ["ok", "warning", "overdue", "paused"]},
    },
    ("stage", "unit", "due_at", "warn_at", "paused", "remaining_seconds", "as_of", "runs_until", "level"),
    description="当前阶段计时（无计时的状态为 null）：页面据此倒计时，不自行按日历计算",
))

CASE = obj(
    {
        "id": STRING, "number": STRING, "source": {"enum": list(SOURCES)},
        "channel": nullable({"enum": list(CHANNELS)}), "type": nullable({"enum": list(TICKET_TYPES)}),
        "category": obj({"code": STRING, "name": STRING, "kind": STRING}, ("code", "name")),
        "status": {"enum": list(STATUSES)}, "priority": STRING,
        "location": nullable(POINT), "address": NSTRING, "description": NSTRING,
        "caller": nullable(obj({"name": NSTRING, "phone": NSTRING},
                               description="掩码显示（张*、138****5678），受理该来电的接线员与管理员除外")),
        "callers": {"type": "array", "description": "并案并入的重复来电的来电人：受理该来电的接线员与管理员见明文，"
                                                   "其他人见掩码；case/number 为被并入的工单",
                    "items": obj({"name": NSTRING, "phone": NSTRING, "case": STRING, "number": NSTRING,
                                  "taken_by": NSTRING, "at": STRING}, ("case", "at"))},
        "jurisdiction": JURISDICTION,
        "assignment": nullable(obj({"department": nullable(NAMED), "rule": NSTRING, "reason": NSTRING})),
        "deadlines": nullable(obj({"sign_by": NSTRING, "handle_by": NSTRING, "check_by": NSTRING})),
        "flags": obj({"warning": BOOL, "overdue": BOOL, "supervised": BOOL, "escalated_to": NSTRING,
                      "return_pending": {"type": "boolean", "description": "退单（派单异议）待指挥中心审核，时限暂停"}}),
        "counters": obj({"returns": INT, "reworks": INT, "extensions": INT,
                         "reassignments": {"type": "integer", "description": "同意退单后改派的次数"},
                         "return_rejections": {"type": "integer", "description": "退单被驳回的次数"}}),
        "support": {"type": "array", "description": "协办部门（主办为 assignment.department）：各自签收、反馈，"
                                                   "时限按部门分别计算；lapsed = 主办反馈时已超时限未反馈",
                    "items": obj({"department": NAMED,
                                  "status": {"enum": ["dispatched", "signed", "done", "lapsed"]},
                                  "dispatched_at": STRING, "signed_at": NSTRING,
                                  "stage": {"enum": ["sign", "handle"]}, "limit": NSTRING, "due": NSTRING,
                                  "late": BOOL, "lapsed_at": NSTRING,
                                  "feedback": nullable(obj({"text": STRING, "photos": {"type": "array", "items": STRING},
                                                            "by": STRING, "at": STRING}))},
                                 ("department", "status"))},
        "return_request": obj({"at": STRING, "by": STRING, "department": NAMED, "reason": STRING, "status": STRING},
                              description="待审核的退单"),
        "photos": {"type": ["array", "null"], "items": STRING},
        "reporters": {"type": "array", "items": STRING},
        "created_by": STRING, "created_at": STRING, "updated_at": STRING, "version": INT,
        "distance_m": INT,
        "timer": TIMER,
        "place": nullable(obj({"door_plate": nullable(obj({"address": STRING, "distance_m": INT})),
                               "community": NSTRING, "text": NSTRING},
                              description="受理时按位置反查：最近的门牌（200 米内）和所在社区")),
        "may_reveal_caller": {"type": "boolean",
                              "description": "来电人对请求者是掩码显示，且请求者可调用 reveal 查看明文（留痕审计）"},
        "actions": {"type": "array", "description": "请求者此刻可对本案件执行的操作及其显示名称；未列出的操作会被拒绝",
                    "items": obj({"name": {"enum": [t.action for t in TABLE]}, "label": STRING}, ("name", "label"))},
        "history": {"type": "array", "items": obj({"at": STRING, "by": STRING, "by_name": STRING, "action": STRING,
                                                   "from": NSTRING, "to": NSTRING, "note": NSTRING},
                                                  ("at", "by", "action"))},
    },
    ("id", "number", "source", "status", "category", "created_at", "version"),
)

FEATURE = obj(
    {"type": {"const": "Feature"}, "id": STRING, "geometry": nullable(POINT),
     "properties": obj({"id": STRING, "number": STRING, "status": {"enum": list(STATUSES)},
                        "summary": STRING, "timer": TIMER, **{level: NSTRING for level in LEVELS}}, ("id",))},
    ("type", "geometry", "properties"),
)
POLYGONAL = obj({"type": {"enum": ["Polygon", "MultiPolygon"]}, "coordinates": {"type": "array"}},
                ("type", "coordinates"))
JURISDICTION_FEATURE = obj(
    {"type": {"const": "Feature"}, "id": STRING, "geometry": POLYGONAL,
     "properties": obj({"id": STRING, "name": STRING, "level": {"enum": list(LEVELS)}, "parent": NSTRING},
                       ("id", "name", "level"))},
    ("type", "geometry", "properties"),
)


def collection(feature: str) -> dict:
    return obj({"type": {"const": "FeatureCollection"}, "features": {"type": "array", "items": ref(feature)}},
               ("type", "features"))


def items(schema: dict, **more) -> dict:
    return obj({"items": {"type": "array", "items": schema}, **more}, ("items",))


ACCOUNT = obj({"username": STRING, "role": {"enum": list(ROLES)}, "scope": STRING, "department": NSTRING,
               "name": NSTRING, "disabled": BOOL, "created_at": NSTRING, "password_changed_at": NSTRING},
              ("username", "role", "scope", "disabled"))

KPI = obj({"key": STRING, "name": STRING, "formula": STRING, "value": {"type": ["number", "null"]}},
          ("key", "name", "value"))
KPI_ROW = obj({"group": obj({"id": NSTRING, "name": STRING}, ("name",)), "kpis": {"type": "array", "items": KPI},
               "by_status": {"type": "object", "additionalProperties": INT}}, ("group", "kpis"))
# A group's row: the values only; each figure's name and formula are given once, in `total`.
KPI_GROUP_ROW = obj({"group": obj({"id": NSTRING, "name": STRING,
                                   "district": {**NSTRING, "description": "按街道分组时：所属区县"},
                                   "street": {**NSTRING, "description": "按社区分组时：所属街道"}}, ("name",)),
                     "kpis": {"type": "array", "items": obj({"key": STRING, "value": {"type": ["number", "null"]},
                                                             "numerator": {"type": "number"},
                                                             "denominator": {"type": "number"}}, ("key", "value"))},
                     "by_status": {"type": "object", "additionalProperties": INT}}, ("group", "kpis"))

CATALOGUE_ENTRY = obj(
    {"category": STRING, "category_name": STRING, "group": NSTRING, "order": INT, "rule": STRING, "rule_name": STRING,
     "conditions": {"type": "string", "description": "规则除类别外的条件（来源、区域、关键词、时段），空 = 无条件"},
     "department_type": NSTRING, "department": nullable(NAMED), "department_examples": STRING,
     "levels": {"type": "array", "items": {"enum": ["city", "district", "street", "community", "grid"]}},
     "level_names": STRING, "disputes": INT, "disputed": BOOL},
    ("category", "rule", "department_type", "levels", "disputes", "disputed"),
)
DISPUTE = obj({"id": STRING, "at": STRING, "by": STRING, "case_id": STRING, "number": NSTRING, "reason": NSTRING,
               "returned_by": NSTRING, "key": {"type": "string", "description": "类别|规则|部门类型|层级"},
               "category": STRING, "category_name": NSTRING, "rule": STRING, "department_type": NSTRING,
               "level": NSTRING, "department": NAMED}, ("id", "at", "case_id", "key"))

SCHEMAS = {
    "Error": ERROR,
    "Catalogue": obj({"items": {"type": "array", "items": CATALOGUE_ENTRY},
                      "disputes": obj({"total": INT}, ("total",)),
                      "levels": {"type": "object", "additionalProperties": STRING}}, ("items", "disputes")),
    "CatalogueDisputes": items(DISPUTE),
    "Point": POINT,
    "User": USER,
    "Case": CASE,
    "CaseList": obj({"items": {"type": "array", "items": ref("Case")}, "next": NSTRING, "total": INT,
                     # Text search (q) reads a bounded recent window (no text index on FerretDB);
                     # the answer names it. A case number (yyyymmdd-nnnnnn) is found at any age.
                     "searched": obj({"from": STRING, "to": NSTRING}, ("from",))}, ("items", "next")),
    "CaseMap": obj({
        "level": {"enum": ["district", "street", "community", "case"]}, "zoom": INT,
        "regions": {"type": "array", "items": obj({"id": STRING, "name": STRING, "open": INT, "overdue": INT},
                                                   ("id", "name", "open", "overdue"))},
        "total": obj({"open": INT, "overdue": INT}, ("open", "overdue")),
        "features": {"type": "array", "items": ref("CaseFeature")},
        "more": INT}, ("level", "zoom")),
    "CaseFeature": FEATURE,
    "CaseFeatureCollection": collection("CaseFeature"),
    "JurisdictionFeature": JURISDICTION_FEATURE,
    "JurisdictionFeatureCollection": collection("JurisdictionFeature"),
    "BaseMapLayer": obj({"type": {"const": "FeatureCollection"},
                         "features": {"type": "array", "items": obj({
                             "type": {"const": "Feature"}, "id": STRING,
                             "properties": obj({"id": STRING, "name": NSTRING, "kind": NSTRING}, ("id", "name", "kind")),
                             "geometry": {"type": "object"}}, ("type", "properties", "geometry"))}},
                        ("type", "features")),

    "Login": obj({"token": STRING, "expires_in": INT, "user": ref("User")}, ("token", "expires_in", "user")),
    "Me": obj({"user": ref("User"), "scope_name": STRING, "department_name": NSTRING,
               "city": obj({"id": STRING, "name": STRING, "bounds": {"type": "array", "items": {"type": "number"}},
                            "timezone": STRING}),
               "storage": obj({"kind": STRING, "persistent": BOOL}), "map": obj({"tile_url": STRING, "overlay_url": STRING, "attribution": STRING,
                                           "subdomains": STRING, "max_zoom": INT,
                                           "layers": {"type": "array", "items": {"enum": ["roads", "pois"]}}})},
              ("user", "city", "storage")),
    "Health": obj({"status": {"enum": ["ok", "degraded"]}, "storage": STRING, "persistent": BOOL,
                   "storage_note": NSTRING}, ("status", "storage", "persistent")),
    "RouteDecision": obj({"jurisdiction": JURISDICTION, "department": nullable(NAMED), "rule": NSTRING,
                          "reason": NSTRING, "priority": STRING}, ("jurisdiction", "department", "rule", "reason")),
    "Departments": items(obj({"id": STRING, "name": STRING, "type": NSTRING, "jurisdiction": NSTRING}, ("id", "name"))),
    "Categories": items(obj({"code": STRING, "name": STRING, "kind": STRING,
                             "keywords": {"type": "array", "items": STRING}}, ("code", "name", "kind"))),
    "Labels": obj({key: {"type": "object", "additionalProperties": STRING} for key in ("statuses", "actions", "stages")},
                  ("statuses", "actions", "stages")),
    "Addresses": items(obj({"address": STRING, "lng": {"type": "number"}, "lat": {"type": "number"}},
                           ("address", "lng", "lat"))),
    "Attachment": obj({"id": STRING, "content_type": {"enum": ["image/jpeg", "image/png", "image/webp"]},
                       "size": INT, "url": STRING}, ("id", "content_type", "size", "url")),
    "AuditVerify": obj({"checked": INT, "ok": BOOL, "broken": {"type": "array", "items": obj(
        {"id": STRING, "number": NSTRING, "index": INT, "entries": INT})}}, ("checked", "ok", "broken")),
    "StatsTrend": obj({"scope": obj({"id": STRING, "name": STRING, "level": STRING}, ("id", "name")),
                       "filters": obj({"category": NSTRING, "department": NSTRING}),
                       "days": {"type": "array", "items": obj({"day": STRING, "reported": INT, "closed": INT},
                                                               ("day", "reported", "closed"))},
                       "top_categories": {"type": "array", "items": obj({"code": STRING, "name": STRING, "count": INT},
                                                                         ("code", "name", "count"))},
                       "departments": {"type": "array", "items": obj({"id": STRING, "name": STRING}, ("id", "name"))}},
                      ("scope", "days", "top_categories", "departments")),
    "Stats": obj({"scope": obj({"id": STRING, "name": STRING}, ("id", "name")), "department": NSTRING,
                  "period": obj({"from": STRING, "to": STRING, "first_day": STRING, "last_day": STRING}),
                  "group_by": {"enum": ["department", "district", "street", "community"]}, "generated_at": STRING,
                  "total": KPI_ROW, "rows": {"type": "array", "items": KPI_GROUP_ROW},
                  "overdue": obj({"count": {"type": ["integer", "number", "null"]},
                                  "items": {"type": "array", "items": {"type": "object"}}})},
                 ("scope", "period", "group_by", "total", "rows")),
    "Reveal": obj({"case_id": STRING, "number": NSTRING, "caller": obj({"name": NSTRING, "phone": NSTRING}),
                   "callers": {"type": "array", "description": "并入本案的重复来电的来电人（明文）",
                               "items": obj({"name": NSTRING, "phone": NSTRING, "number": NSTRING})},
                   "revealed_at": STRING, "audited": {"const": True}},
                  ("case_id", "caller", "revealed_at", "audited")),
    "Account": ACCOUNT,
    "Accounts": items(ref("Account")),
    "AuditRecords": items(obj({"id": STRING, "at": STRING, "by": STRING}, ("id", "at", "by"))),
    "Logout": obj({"ok": BOOL, "revoked": BOOL}, ("ok",)),
}

# --------------------------------------------------------------------------------------------
# Request bodies
# --------------------------------------------------------------------------------------------

_FIELD_SCHEMAS = {
    "text": lambda f: text(f.max_len, required=True),
    "bool": lambda f: BOOL,
    "choice": lambda f: {"enum": list(f.options)},
    "photos": lambda f: {"type": "array", "maxItems": 9, "items": ATTACHMENT_ID},
    "id": lambda f: {"type": "string", "minLength": 1, "maxLength": 64},
    "ids": lambda f: {"type": "array", "maxItems": 20, "items": {"type": "string", "minLength": 1, "maxLength": 64}},
    "duration": lambda f: {"type": "string", "pattern": "^[0-9]{1,5}(\\.[0-9]{1,3})?(m|h|d|wh|wd)$"},
    "instant": lambda f: {"type": "string", "format": "date-time"},
    "point": lambda f: ref("Point"),
}


def action_body() -> dict:
    """Every field any action reads (each action reads its own; the rest are ignored)."""
    properties = {"note": text(500),
                  "version": {"type": "integer", "minimum": 0, "description": "乐观锁：看到的案件版本"}}
    for transition in TABLE:
        for f in transition.fields:
            schema = _FIELD_SCHEMAS[f.kind](f)
            properties.setdefault(f.name, schema)
    return obj(properties, description="各操作读取的字段见 SPEC §4；必填字段缺失 → 400")


REPORT_BODY = obj(
    {"category": ref("ReportCategory"), "description": text(2000),
     "location": ref("Point"), "address": text(200),
     "photos": {"type": "array", "maxItems": 9, "items": ATTACHMENT_ID},
     "client_id": text(64)},  # empty or null: no retry to recognise
    ("category", "location"),
)
TICKET_BODY = obj(
    {"channel": {"enum": list(CHANNELS)}, "type": {"enum": list(TICKET_TYPES)},
     "content": text(4000, required=True),
     "caller": nullable(obj({"name": text(50),
                    "phone": nullable(or_empty({"type": "string", "pattern": "^\\+?[0-9][0-9\\- ]{2,19}$"}))})),
     "category": nullable(or_empty(ref("CategoryCode"))), "address": text(200),
     # A caller may not know where: the ticket waits for a location before it is dispatched.
     "location": nullable(ref("Point")), "client_id": text(64)},
    ("type", "content"),
)
LOGIN_BODY = obj({"username": text(64, required=True), "password": text(256, required=True)}, ("username", "password"))
NEW_ACCOUNT = obj({"username": USERNAME, "password": {"type": "string", "minLength": 10, "maxLength": 256},
                   "role": {"enum": list(ROLES)}, "scope": ref("JurisdictionId"),
                   "department": {"type": "string", "maxLength": 64}, "name": text(50)},
                  ("username", "password", "role", "scope"), additionalProperties=False,
                  description="department 仅用于且必须用于 role=department 的账号",
                  **{"if": {"properties": {"role": {"const": "department"}}, "required": ["role"]},
                     "then": {"properties": {"department": ref("DepartmentId")}, "required": ["department"]},
                     "else": {"properties": {"department": {"type": "string", "pattern": "^\\s*$"}}}})
ACCOUNT_CHANGE = obj({"password": {"type": "string", "minLength": 10, "maxLength": 256}, "disabled": BOOL,
                      "scope": ref("JurisdictionId")},
                     additionalProperties=False, minProperties=1)
REVEAL_BODY = obj({"reason": text(200, required=True)}, ("reason",))

# --------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------


def query(name: str, schema: dict, description: str = "", required: bool = False) -> dict:
    out = {"name": name, "in": "query", "required": required, "schema": schema}
    if description:
        out["description"] = description
    return out


def path(name: str, schema: dict) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": schema}


CSV = {"type": "string", "maxLength": 1300}
# Shared by the three case lists and the stats: named once so that the document stays small.
SCHEMAS.update({"Day": DAY, "DayOrInstant": DAY_OR_INSTANT, "BBox": BBOX, "Near": NEAR})
CASE_FILTERS = [
    query("status", csv(STATUSES), f"逗号分隔: {', '.join(STATUSES)}"),
    query("open", {"type": "boolean"}, "仅未办结的案件"),
    query("mine", {"type": "boolean"}, "仅我上报的案件"),
    query("near", or_empty(ref("Near")), "经度,纬度,半径米（≤5000）"),
    query("category", csv(), "类别代码，逗号分隔"),
    query("department", csv(), "部门 id，逗号分隔"),
    *[query(level, csv(), f"{level} id，逗号分隔") for level in LEVELS],
    query("source", csv(SOURCES), "grid, hotline"),
    query("overdue", {"type": "boolean"}),
    query("warning", {"type": "boolean"}, "仅临期预警（已预警、尚未超期）的案件"),
    query("supervised", {"type": "boolean"}, "仅督办中的案件"),
    query("return_pending", {"type": "boolean"}, "仅承办部门申请退单、等待审核的案件（退单待审）"),
    query("bbox", or_empty(ref("BBox")), "最小经度,最小纬度,最大经度,最大纬度"),
    query("q", {"type": "string", "maxLength": 100},
          "在描述、编号、地址中搜索：只查最近 7 天（或 from/to 内最近 7 天）建立的案件，响应的 searched 给出范围；"
          "完整案件编号不受此限"),
    query("from", or_empty(ref("DayOrInstant")), "ISO 日期或时间（含）"),
    query("to", or_empty(ref("DayOrInstant")), "ISO 日期或时间（不含）"),
]
STATS_PARAMS = [
    query("scope", or_empty(ref("JurisdictionId")), "辖区 id（空或不给 = 本人辖区）"),
    query("from", or_empty(ref("Day")), "空或不给：与 to 同月的月初（都不给 = 本月）"),
    query("to", or_empty(ref("Day")), "含当日；须不早于 from"),
    query("group_by", {"enum": ["department", "district", "street", "community"]}),
    query("top", {"type": "integer", "minimum": 0, "maximum": 500}),
]

# --------------------------------------------------------------------------------------------
# Operations
# --------------------------------------------------------------------------------------------

JSON = "application/json"


@dataclass(frozen=True)
class Op:
    method: str
    path: str
    permission: tuple[str, str]
    summary: str
    tag: str
    parameters: list = field(default_factory=list)
    body: dict | None = None
    body_type: str = JSON
    responses: dict = field(default_factory=dict)  # status → (media type, schema) or description
    also: tuple = ()  # further permissions the handler checks for some requests


def json_response(name_or_schema, media: str = JSON):
    schema = ref(name_or_schema) if isinstance(name_or_schema, str) else name_or_schema
    return (media, schema)


# The city configuration's versions (SPEC §9, dispatch/admin). `items` is the kind's file as
# JSON: categories, departments: lists as in the YAML; rules: {fallback, rules}; zones: GeoJSON
# features; addresses: [{address, lng, lat}]; calendar: {work_hours, holidays, workdays}.
CONFIG_KIND = {"enum": ["calendar", "zones", "departments", "categories", "rules", "addresses", "knowledge"]}
CONFIG_ITEMS = {"type": ["array", "object"], "description": "该类配置的全部条目（与城市包文件同构）"}
CONFIG_ITEMS_OF = obj({"version": INT, "items": CONFIG_ITEMS, "editable": BOOL}, ("version", "items", "editable"))
CONFIG_VERSION = obj({"version": INT, "at": STRING, "by": STRING, "note": STRING,
                      "kinds": {"type": "array", "items": CONFIG_KIND}, "diff": {"type": "object"},
                      "rollback_of": {"type": ["integer", "null"]}},
                     ("version", "at", "by", "note", "kinds", "diff"))
CONFIG_PUT = obj({"version": {"type": "integer", "description": "修改所依据的版本号（不是最新则 409）"},
                  "items": CONFIG_ITEMS, "note": text(500)}, ("version", "items"))
CONFIG_PROBLEMS = obj({"error": obj({"code": STRING, "message": STRING, "problems": {
    "type": "array", "items": obj({"file": NSTRING, "item": NSTRING, "problem": STRING, "text": STRING},
                                  ("problem", "text"))}}, ("code", "message"))}, ("error",))
ROUTED = nullable(obj({"department": nullable(NAMED), "rule": NSTRING, "reason": STRING, "priority": STRING}))
DRY_RUN = obj({"days": INT, "replayed": INT, "changed": INT, "skipped": INT,
               "sample": {"type": "array", "items": obj({"case": {"type": "object"}, "before": ROUTED, "after": ROUTED},
                                                        ("case", "before", "after"))},
               "moves": {"type": "array", "items": obj({"from": STRING, "to": STRING, "count": INT})}},
              ("replayed", "changed", "sample"))

HTML = ("text/html", STRING)
GEOJSON = "application/geo+json"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

OPERATIONS = [
    Op("GET", "/healthz", ("health", "read"), "存活检查：存储引擎、数据是否持久", "system",
       responses={200: json_response("Health"), 503: json_response("Health")}),
    Op("GET", "/api/openapi.json", ("openapi", "read"), "本文档", "system",
       responses={200: json_response({"type": "object"})}),
    Op("POST", "/api/login", ("session", "login"), "登录：返回令牌并设置会话 Cookie（失败过多 → 429）", "session",
       body=LOGIN_BODY, responses={200: json_response("Login")}),
    Op("POST", "/api/logout", ("session", "logout"), "注销：吊销所出示的令牌并清除 Cookie", "session",
       responses={200: json_response("Logout")}),
    Op("GET", "/api/me", ("session", "read"), "当前用户与页面所需信息", "session",
       responses={200: json_response("Me")}),
    Op("POST", "/api/reports", ("report", "create"), "网格员上报", "intake", body=REPORT_BODY,
       responses={200: json_response("Case"), 201: json_response("Case")}),
    Op("POST", "/api/tickets", ("ticket", "create"), "12345 热线工单登记", "intake", body=TICKET_BODY,
       responses={200: json_response("Case"), 201: json_response("Case")}),
    Op("GET", "/api/route", ("route", "read"), "路由预判：不建案，只给出辖区与责任部门", "intake",
       parameters=[query("lng", {"type": "number", "minimum": -180, "maximum": 180}, required=True),
                   query("lat", {"type": "number", "minimum": -90, "maximum": 90}, required=True),
                   query("category", ref("CategoryCode"), required=True),
                   query("source", {"enum": list(SOURCES)}), query("text", {"type": "string", "maxLength": 2000})],
       responses={200: json_response("RouteDecision")}),
    Op("GET", "/api/addresses", ("address", "search"), "门楼牌地址联想", "reference",
       parameters=[query("q", {"type": "string", "maxLength": 100}),
                   query("limit", {"type": "integer", "minimum": 1, "maximum": 50})],
       responses={200: json_response("Addresses")}),
    Op("GET", "/api/cases", ("case", "read"), "案件列表（按辖区过滤，分页）", "cases",
       parameters=[*CASE_FILTERS, query("limit", {"type": "integer", "minimum": 1, "maximum": 500}),
                   query("cursor", {"type": "string", "maxLength": 200}),
                   query("count", {"type": "boolean"}, "true：另返回符合条件的案件总数 total（不受分页限制）")],
       responses={200: json_response("CaseList")}),
    Op("GET", "/api/cases.geojson", ("case", "read"), "案件点位 GeoJSON（不含来电人）", "cases",
       parameters=[*CASE_FILTERS, query("limit", {"type": "integer", "minimum": 1, "maximum": 10000})],
       responses={200: json_response("CaseFeatureCollection", GEOJSON)}),
    Op("GET", "/api/cases/map", ("case", "read"),
       "指挥地图：zoom < 15 时按辖区（区/街道/社区）统计在办与超期件数；zoom ≥ 15 时返回 bbox 内在办案件点位"
       "（最新在前，至多 300 件，more = 框内还有的件数）", "cases",
       parameters=[*CASE_FILTERS, query("zoom", {"type": "integer", "minimum": 0, "maximum": 22}, "地图缩放级别（默认 12）")],
       responses={200: json_response("CaseMap")}),
    Op("GET", "/api/cases/{id}", ("case", "read"), "单个案件（辖区外 → 404）", "cases",
       parameters=[path("id", CASE_ID)], responses={200: json_response("Case")}),
    Op("POST", "/api/cases/{id}/actions/{action}", ("case", "act"), "闭环操作（SPEC §4 的流转表）", "cases",
       parameters=[path("id", CASE_ID), path("action", {"enum": [t.action for t in TABLE]})],
       body=action_body(), responses={200: json_response("Case")}),
    Op("POST", "/api/cases/{id}/reveal", ("caller", "reveal"), "查看来电人明文（留痕审计、限频）", "cases",
       parameters=[path("id", CASE_ID)], body=REVEAL_BODY, responses={200: json_response("Reveal")}),
    Op("POST", "/api/attachments", ("attachment", "create"), "上传照片（JPEG/PNG/WebP，≤5 MB，按内容识别类型）",
       "attachments", body={"type": "string", "format": "binary"}, body_type="image/jpeg",
       responses={201: json_response("Attachment")}),
    Op("GET", "/api/attachments/{id}", ("attachment", "read"), "照片（上传者或能看到引用它的案件者）", "attachments",
       parameters=[path("id", ATTACHMENT_ID)],
       responses={200: [("image/jpeg", {"type": "string", "format": "binary"}),
                        ("image/png", {"type": "string", "format": "binary"}),
                        ("image/webp", {"type": "string", "format": "binary"})]}),
    Op("GET", "/api/audit/verify", ("audit", "verify"), "校验案件历史哈希链（不带 case 时校验整个辖区）", "audit",
       parameters=[query("case", {"type": "string", "maxLength": 64})], responses={200: json_response("AuditVerify")},
       also=(("audit", "verify_all"),)),
    Op("GET", "/api/jurisdictions.geojson", ("reference", "read"), "辖区边界 GeoJSON", "reference",
       parameters=[query("level", {"enum": list(LEVELS)}), query("within", or_empty(ref("JurisdictionId"))),
                   query("bbox", or_empty(ref("BBox")), "最小经度,最小纬度,最大经度,最大纬度")],
       responses={200: json_response("JurisdictionFeatureCollection", GEOJSON)}),
    Op("GET", "/api/basemap/{layer}.geojson", ("reference", "read"), "底图图层：道路、兴趣点（城市包可选，缺则 404）",
       "reference", parameters=[path("layer", {"enum": ["roads", "pois"]})],
       responses={200: json_response("BaseMapLayer", GEOJSON)}),
    Op("GET", "/api/calendar/add", ("reference", "read"), "按城市工作日历计算：某时刻加上一段时长（如延期后的新时限预览）",
       "reference", parameters=[query("from", DAY_OR_INSTANT, "起始时刻（ISO）", required=True),
                                query("duration", {"type": "string", "maxLength": 16, "pattern": "^[0-9]{1,5}(\\.[0-9]{1,3})?(m|h|d|wh|wd)$"},
                                      "时长：m/h/d 自然时间，wh 工作小时，wd 工作日；最长 10 年（超出 → 400）", required=True)],
       responses={200: json_response(obj({"from": STRING, "duration": STRING, "at": STRING, "at_utc": STRING},
                                          ("from", "duration", "at", "at_utc")))}),
    Op("GET", "/api/departments", ("reference", "read"), "部门", "reference",
       responses={200: json_response("Departments")}),
    Op("GET", "/api/categories", ("reference", "read"), "案件类别", "reference",
       responses={200: json_response("Categories")}),
    Op("GET", "/api/labels", ("labels", "read"), "状态、操作、时限阶段的显示名称（页面统一使用）", "reference",
       responses={200: json_response("Labels")}),
    Op("GET", "/api/stats", ("stats", "read"), "考核指标（本辖区内）", "stats", parameters=STATS_PARAMS,
       responses={200: json_response("Stats")}),
    Op("GET", "/api/stats/trend", ("stats", "read"),
       "近若干天每日上报（不含后来作废、并案的）、首次结案数与高发问题类型（指挥中心趋势图；口径同 KPI，由汇总计算）", "stats",
       parameters=[query("scope", or_empty(ref("JurisdictionId")), "辖区 id（空或不给 = 本人辖区）"),
                   query("days", {"type": "integer", "minimum": 1, "maximum": 90}, "天数（含今天），默认 30"),
                   query("category", ref("CategoryCode"), "只计该类别"),
                   query("department", ref("DepartmentId"), "只计当时由该部门负责的上报与结案")],
       responses={200: json_response("StatsTrend")}),
    Op("GET", "/api/stats.{format}", ("stats", "read"), "考核指标导出（CSV / Excel）", "stats",
       parameters=[path("format", {"enum": ["csv", "xlsx"]}), *STATS_PARAMS],
       responses={200: [("text/csv", STRING), (XLSX, {"type": "string", "format": "binary"})]}),
    Op("GET", "/api/admin/users", ("user", "manage"), "账号列表（仅管理员）", "admin",
       responses={200: json_response("Accounts")}),
    Op("POST", "/api/admin/users", ("user", "manage"), "创建账号（仅管理员，留痕）", "admin", body=NEW_ACCOUNT,
       responses={201: json_response("Account")}),
    Op("GET", "/api/admin/users/{username}", ("user", "manage"), "账号详情（仅管理员）", "admin",
       parameters=[path("username", USERNAME)], responses={200: json_response("Account")}),
    Op("PATCH", "/api/admin/users/{username}", ("user", "manage"),
       "重置密码 / 停用 / 启用 / 调整辖区（吊销其全部令牌，留痕；区级管理员只管本区账号）",
       "admin", parameters=[path("username", USERNAME)], body=ACCOUNT_CHANGE,
       responses={200: json_response("Account")}),
    Op("GET", "/api/admin/audit", ("audit_log", "read"), "审计记录：来电人明文查看、账号管理（仅管理员）", "admin",
       parameters=[query("kind", {"enum": ["reveals", "admin_audit", "catalogue_disputes"]}), query("case", {"type": "string", "maxLength": 64}),
                   query("user", {"type": "string", "maxLength": 64}),
                   query("limit", {"type": "integer", "minimum": 1, "maximum": 1000})],
       responses={200: json_response("AuditRecords")}),
    Op("GET", "/api/catalogue", ("catalogue", "read"), "派单目录：各类别由哪类部门在哪一层级承办（由派单规则生成，标出派单异议）",
       "catalogue", responses={200: json_response("Catalogue")}),
    Op("GET", "/api/catalogue.csv", ("catalogue", "read"), "派单目录导出 CSV（UTF-8 带 BOM，Excel 可直接打开）", "catalogue",
       responses={200: ("text/csv", STRING)}),
    Op("GET", "/api/catalogue/disputes", ("catalogue", "disputes"), "派单异议：被同意的退单及其对应的目录条目（最新在前）",
       "catalogue", parameters=[query("limit", {"type": "integer", "minimum": 1, "maximum": 1000})],
       responses={200: json_response("CatalogueDisputes")}),
    Op("GET", "/api/admin/config/history", ("config", "read"), "城市配置的版本历史：谁、何时、为何、改了什么（差异）",
       "admin", parameters=[query("limit", {"type": "integer", "minimum": 1, "maximum": 500})],
       responses={200: json_response(obj({"version": INT, "items": {"type": "array", "items": CONFIG_VERSION}},
                                         ("version", "items")))}),
    Op("POST", "/api/admin/config/rollback", ("config", "edit"),
       "回滚：以指定版本的全部配置发布一个新版本（仅市级管理员，留痕）", "admin",
       body=obj({"version": {"type": "integer", "minimum": 1}, "note": text(500)}, ("version",)),
       responses={201: json_response(CONFIG_VERSION), 422: json_response(CONFIG_PROBLEMS)}),
    Op("POST", "/api/admin/config/rules/dry-run", ("config", "read"),
       "规则试运行：用拟议规则重放最近 N 天的案件，列出会改派的案件（前后两种派遣理由）", "admin",
       body=obj({"items": CONFIG_ITEMS, "days": {"type": "integer", "minimum": 1, "maximum": 90}}, ("items",)),
       responses={200: json_response(DRY_RUN), 422: json_response(CONFIG_PROBLEMS)}),
    Op("GET", "/api/admin/config/{kind}", ("config", "read"), "某类城市配置的当前版本与全部条目", "admin",
       parameters=[path("kind", CONFIG_KIND)], responses={200: json_response(CONFIG_ITEMS_OF)}),
    Op("PUT", "/api/admin/config/{kind}", ("config", "edit"),
       "发布某类配置的新版本：校验同城市包（422 列出全部问题，不做任何更改），version 过期 409；"
       "5 秒内在所有进程生效，在办案件保持原派遣（区级管理员只能改本区部门与规则，留痕）", "admin",
       parameters=[path("kind", CONFIG_KIND)], body=CONFIG_PUT,
       responses={201: json_response(CONFIG_VERSION), 422: json_response(CONFIG_PROBLEMS)}),
    Op("GET", "/ws/live", ("live", "subscribe"),
       "WebSocket 实时推送：{type: case.created | case.updated, case: GeoJSON Feature}（仅本辖区，不含来电人）",
       "live", parameters=[query("since", {"type": "integer", "minimum": 0}, "断线重连时最后收到的事件 id")],
       responses={101: "升级为 WebSocket", 400: "不是 WebSocket 握手请求"}),
    *[Op("GET", f"/{page}", ("page", "view"), f"页面 /{page}（未登录则跳转 /login）", "pages",
         responses={200: HTML, 302: "跳转登录"}) for page in ("login", "report", "hotline", "dept", "command", "catalogue",
                                                                             "admin")],
    Op("GET", "/", ("page", "view"), "按角色跳转到首页", "pages", responses={302: "跳转"}),
    Op("GET", "/favicon.ico", ("page", "view"), "站点图标", "pages", responses={200: ("image/svg+xml", STRING)}),
    Op("GET", "/report-sw.js", ("page", "view"), "网格员页面的 Service Worker", "pages",
       responses={200: ("text/javascript", STRING)}),
]


# -- operator assist (SPEC §9) ------------------------------------------------------------------

ARTICLE_ID = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.\\-]{0,63}$"}
CASE_SUMMARY = obj({"id": STRING, "number": STRING, "status": {"enum": list(STATUSES)}, "category": {"type": "object"},
                    "address": NSTRING, "summary": STRING, "created_at": STRING,
                    "caller": nullable(obj({"name": NSTRING, "phone": NSTRING},
                                           description="掩码显示，受理该来电的接线员与管理员除外")),
                    "repeat_count": INT, "distance_m": {"type": ["integer", "null"]},
                    "score": {"type": "number"}, "text_similarity": {"type": "number"}},
                   ("id", "number", "status", "summary", "repeat_count"))
ARTICLE_FIELDS = {"id": ARTICLE_ID, "title": text(200, required=True),
                  "questions": {"type": "array", "minItems": 1, "maxItems": 50, "items": text(200, required=True)},
                  "answer": text(4000, required=True), "category": nullable(ref("CategoryCode")),
                  "department": nullable(ref("DepartmentId")), "valid_from": nullable(DAY), "valid_to": nullable(DAY),
                  "tags": {"type": "array", "maxItems": 20, "items": text(50, required=True)}}
ARTICLE = obj({**ARTICLE_FIELDS, "version": INT, "score": {"type": "number"},
               "updated_at": {"type": "string", "description": "当前版本的保存时间（列出全部时给出）"}},
              ("id", "title", "answer"))
MODEL_STATUS = obj({"version": {"type": ["integer", "null"]}, "examples": INT, "trained_at": NSTRING},
                   ("version", "examples"))
SCHEMAS.update({
    "CaseSummary": CASE_SUMMARY,
    "Article": ARTICLE,
    "Articles": items(ref("Article")),
    "AssistModel": MODEL_STATUS,
    "Assist": obj({
        "categories": {"type": "array", "items": obj({"code": STRING, "name": STRING, "score": {"type": "number"},
                                                      "department": nullable(NAMED)}, ("code", "name", "score"))},
        "knowledge": {"type": "array", "items": obj({"id": STRING, "title": STRING, "answer": STRING,
                                                     "score": {"type": "number"}}, ("id", "title", "answer", "score"))},
        "similar": {"type": "array", "items": ref("CaseSummary")},
        "caller": obj({"recent": {"type": "array", "items": ref("CaseSummary")}, "repeat_of": NSTRING},
                      ("recent", "repeat_of")),
        "model": ref("AssistModel")}, ("categories", "knowledge", "similar", "caller")),
    "Training": obj({"version": INT, "examples": INT, "from_store": INT, "categories": INT, "trained_at": STRING,
                     "seconds": {"type": "number"}, "processes": {"type": ["integer", "null"]}},
                    ("version", "examples")),
    "ArticleReview": items(obj({**ARTICLE_FIELDS, "reasons": {"type": "array", "items": {
        "enum": ["expired", "never_used", "marked_wrong"]}}, "uses": INT}, ("id", "reasons")),
        uses={"type": "object", "additionalProperties": INT}),
})
ARTICLE_BODY = obj(ARTICLE_FIELDS | {"note": text(200)}, ("id", "title", "questions", "answer"),
                   description="字段同城市包 knowledge.yaml（SPEC §2）；有误 → 422 列出每个问题")
ARTICLE_CHANGE = obj({k: v for k, v in ARTICLE_FIELDS.items() if k != "id"}
                     | {"version": {"type": "integer", "minimum": 1, "description": "乐观锁：看到的版本"},
                        "note": text(200)}, ("version", "title", "questions", "answer"))

OPERATIONS += [
    Op("GET", "/api/assist", ("assist", "read"),
       "接线辅助：类别建议（含规则预判部门）、知识库、附近相似案件、来电人历史与重复诉求（100 毫秒内）", "assist",
       parameters=[query("text", {"type": "string", "maxLength": 4000}, "诉求内容（可为空）"),
                   query("lng", {"type": "number", "minimum": -180, "maximum": 180}, "与 lat 同时给出"),
                   query("lat", {"type": "number", "minimum": -90, "maximum": 90}),
                   query("phone", or_empty({"type": "string", "maxLength": 25,
                                                     "pattern": "^\\+?[0-9]([\\- ()（）]*[0-9]){4}[0-9\\- ()（）]*$"}),
                         "来电号码（至少 5 位数字）"),
                   query("category", ref("CategoryCode"), "已选类别（相似案件按它加权）")],
       responses={200: json_response("Assist")}),
    Op("POST", "/api/admin/assist/train", ("assist", "train"),
       "重新训练类别建议模型；新模型在所有进程生效后返回（样本太少 → 422，原模型继续使用）", "assist",
       responses={200: json_response("Training")}),
    Op("GET", "/api/admin/assist/train", ("assist", "train"), "当前使用的类别建议模型", "assist",
       responses={200: json_response("AssistModel")}),
    Op("GET", "/api/knowledge", ("knowledge", "read"), "知识库检索（字符 n-gram + BM25；不带 q 时列出全部）", "knowledge",
       parameters=[query("q", {"type": "string", "maxLength": 500}),
                   query("limit", {"type": "integer", "minimum": 1, "maximum": 100})],
       responses={200: json_response("Articles")}),
    Op("GET", "/api/knowledge/{id}", ("knowledge", "read"), "知识条目（当前版本）", "knowledge",
       parameters=[path("id", ARTICLE_ID)], responses={200: json_response("Article")}),
    Op("POST", "/api/knowledge/{id}/flag", ("knowledge", "flag"), "标记知识条目有误或过时（进入复核清单）", "knowledge",
       parameters=[path("id", ARTICLE_ID)], body=obj({"note": text(500, required=True)}, ("note",)),
       responses={201: json_response(obj({"article": STRING, "flagged": BOOL}))}),
    Op("POST", "/api/admin/knowledge", ("knowledge", "manage"), "新增知识条目（第 1 版；已存在 → 409）", "knowledge",
       body=ARTICLE_BODY, responses={201: json_response("Article")}),
    Op("GET", "/api/admin/knowledge/review", ("knowledge", "manage"), "待复核的知识条目：已过期、从未使用、被标记有误",
       "knowledge", responses={200: json_response("ArticleReview")}),
    Op("PUT", "/api/admin/knowledge/{id}", ("knowledge", "manage"), "修改知识条目（新版本；version 过期 → 409）",
       "knowledge", parameters=[path("id", ARTICLE_ID)], body=ARTICLE_CHANGE, responses={200: json_response("Article")}),
    Op("DELETE", "/api/admin/knowledge/{id}", ("knowledge", "manage"), "删除知识条目（保留历史版本）", "knowledge",
       parameters=[path("id", ARTICLE_ID), query("version", {"type": "integer", "minimum": 1})],
       responses={204: "已删除"}),
    Op("GET", "/api/admin/knowledge/{id}/history", ("knowledge", "manage"), "知识条目的全部版本", "knowledge",
       parameters=[path("id", ARTICLE_ID)], responses={200: json_response("Articles")}),
]


def _responses(op: Op) -> dict:
    out = {}
    for status, spec in op.responses.items():
        if isinstance(spec, str):
            out[str(status)] = {"description": spec}
            continue
        contents = spec if isinstance(spec, list) else [spec]
        out[str(status)] = {"description": "成功" if status < 300 else "见说明",
                            "content": {media: {"schema": schema} for media, schema in contents}}
    if op.path.startswith(("/api/", "/healthz")):
        out["default"] = {"description": "错误：400 格式错误，401 未登录，403 越权，404 不存在或不在辖区内，"
                                         "409 状态冲突，413 过大，415 类型不支持，422 语义错误，429 限流",
                          "content": {JSON: {"schema": ref("Error")}}}
    return out


def _operation(op: Op) -> dict:
    roles = PERMISSIONS[op.permission]
    who = "公开" if roles == PUBLIC else "角色: " + ", ".join(roles)
    for extra in op.also:
        who += f"；{extra[0]}.{extra[1]}: " + ", ".join(PERMISSIONS[extra])
    out = {
        "operationId": f"{op.method.lower()}_{op.path.strip('/').replace('/', '_').replace('.', '_') or 'root'}"
                       .replace("{", "").replace("}", ""),
        "summary": op.summary,
        "description": f"{who}。权限: {op.permission[0]}.{op.permission[1]}",
        "tags": [op.tag],
        "x-permission": list(op.permission),
        **({"x-permission-also": [list(extra) for extra in op.also]} if op.also else {}),
        "parameters": op.parameters,
        "responses": _responses(op),
    }
    if op.body is not None:
        out["requestBody"] = {"required": True, "content": {op.body_type: {"schema": op.body}}}
    if roles == PUBLIC:
        out["security"] = []
    return out


JURISDICTION_ID = {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$",
                   "description": "辖区 id（市、区、街道、社区、网格）；城市中不存在的 id 返回 422"}


def city_schemas(city=None) -> dict:
    """The ids the server looks up in the city: enums when the city is known."""
    if city is None:
        return {"CategoryCode": {"type": "string", "maxLength": 32}, "ReportCategory": {"type": "string", "maxLength": 32},
                "JurisdictionId": JURISDICTION_ID, "DepartmentId": {"type": "string", "maxLength": 64}}
    return {
        "CategoryCode": {"enum": sorted(city.categories)},
        "ReportCategory": {"enum": sorted(code for code, c in city.categories.items() if c.kind in ("component", "event")),
                           "description": "网格员上报只能用部件、事件类"},
        # Thousands of grids: a pattern, not an enumeration (the document stays small); an id the
        # city does not have is a documented 422 (unknown_scope / unknown_jurisdiction).
        "JurisdictionId": JURISDICTION_ID,
        "DepartmentId": {"enum": sorted(city.departments)},
    }


def document(city=None) -> dict:
    """The document; with `city`, the ids it knows (categories, departments) as enums."""
    paths: dict = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "城市运行一网统管 — 事件派遣平台 API",
            "version": "1.0.0",
            "description": "错误体统一为 {\"error\": {\"code\", \"message\"}}。来电人姓名与号码对受理该来电的接线员和"
                           "管理员以外的所有人掩码显示；查看明文须调用 reveal 并留痕。",
        },
        "paths": paths,
        "components": {
            "schemas": {**SCHEMAS, **city_schemas(city)},
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": "session",
                            "description": "页面使用；写操作须带 X-XSRFToken 头（取自 _xsrf Cookie）"},
            },
        },
        "security": [{"bearer": []}, {"session": []}],
    }
