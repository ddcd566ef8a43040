"""Who may do what: the one place that decides, from the user's role, scope and department.

Two layers, both decided here and nowhere else:

* **Permissions** — every handler declares the (resource, action) it serves (`access` on the
  handler class); `authorize` checks the user's role against `PERMISSIONS` before the handler
  runs. A handler that declares nothing is refused (fail closed).
* **Scope** — which cases exist for the user at all. A department sees the cases assigned to it,
  now or before, and those it supports (协办: `departments_seen` holds both); everyone else
  sees the cases inside their scope (a jurisdiction and everything under it; the city id
  means the whole city); the admin sees all. Reporters (grid workers, operators) also see
  the cases they reported themselves, wherever those lie. Scopes are applied in the query
  itself (`case_scope`), never after fetching; `can_read_case` is the same rule for one
  document in hand (the live feed, a single read).
"""

from __future__ import annotations

from dispatch.access.auth import ROLES, User
from dispatch.store.query import EVERYTHING, Scope, TextSearch
from dispatch.errors import ApiError, conflict, forbidden, not_found, unauthorized, unprocessable

# -- permissions -----------------------------------------------------------------------------

PUBLIC = "public"  # no account needed
EVERYONE = ROLES  # any signed-in account
INTAKE_ROLES = ("grid_worker", "operator")

# (resource, action) → the roles that may take it. Scope, assignment and the closed loop's
# own table (dispatch.workflow.transitions) narrow these further for each case.
PERMISSIONS: dict[tuple[str, str], tuple[str, ...] | str] = {
    ("session", "login"): PUBLIC,
    ("session", "logout"): PUBLIC,  # clears the cookie even when the token is already dead
    ("session", "read"): EVERYONE,
    ("health", "read"): PUBLIC,
    ("openapi", "read"): PUBLIC,
    ("page", "view"): PUBLIC,  # static shells: every datum on them comes through the API
    ("case", "read"): EVERYONE,  # narrowed by case_scope / can_read_case
    ("case", "act"): EVERYONE,  # narrowed by the transition table (action_refusal)
    ("report", "create"): ("grid_worker",),
    ("ticket", "create"): ("operator",),
    ("route", "read"): EVERYONE,
    ("reference", "read"): EVERYONE,  # jurisdictions, departments, categories
    ("labels", "read"): EVERYONE,  # the names of statuses, actions and stages the pages show
    ("address", "search"): ("operator", "dispatcher", "admin"),  # door-plate suggestions
    ("attachment", "create"): ("grid_worker", "department", "operator", "dispatcher"),
    ("attachment", "read"): EVERYONE,  # narrowed to the owner and readers of a case using it
    ("stats", "read"): ("commander", "dispatcher", "admin", "department"),
    ("audit", "verify"): EVERYONE,  # one readable case; the whole scope needs verify_all
    ("audit", "verify_all"): ("admin", "commander", "dispatcher"),
    # Narrowed per case by reveal_refusal (`auth.reveal_roles`): by default the operator who
    # took the call, the operators doing its 回访 callback, and admins. Audited.
    ("caller", "reveal"): EVERYONE,
    ("user", "manage"): ("admin",),
    ("config", "read"): ("admin",),  # the city configuration's versions (SPEC §9)
    ("config", "edit"): ("admin",),  # narrowed per kind and item by config_refusal
    ("audit_log", "read"): ("admin",),
    # 派单目录: published to everyone who dispatches or handles; the disputes list is for those
    # who act on it (the admin corrects the rules, the dispatchers see their 改派).
    ("catalogue", "read"): ("operator", "dispatcher", "department", "commander", "admin"),
    ("catalogue", "disputes"): ("dispatcher", "admin"),
    ("live", "subscribe"): EVERYONE,
    # the operator assist (SPEC §9): case summaries in it are scoped and masked as everywhere
    ("assist", "read"): ("operator", "dispatcher"),
    ("assist", "train"): ("admin",),
    ("knowledge", "read"): ("operator", "dispatcher", "admin"),
    ("knowledge", "flag"): ("operator", "dispatcher"),
    ("knowledge", "manage"): ("admin",),
}


def permitted(user: User | None, resource: str, action: str) -> bool:
    roles = PERMISSIONS.get((resource, action))
    if roles is None:
        return False
    if roles == PUBLIC:
        return True
    return user is not None and user.role in roles


def authorize(user: User | None, resource: str, action: str) -> None:
    """Raise the right ApiError (401/403) unless `user` may take `action` on `resource`."""
    roles = PERMISSIONS.get((resource, action))
    if roles is None:
        raise forbidden(f"未声明的权限: {resource}.{action}", code="undeclared_permission")
    if roles == PUBLIC:
        return
    if user is None:
        raise unauthorized()
    if user.role not in roles:
        raise forbidden(f"角色 {user.role} 无权执行此操作", code="role_forbidden")


# -- scope: which cases exist for a user ---------------------------------------------------

def case_scope(user: User, city_id: str) -> Scope:
    """The cases `user` may see, as the store's `Scope`: applied inside every query."""
    if user.role == "admin":
        return EVERYTHING
    if user.role == "department":
        return Scope(department=user.department or "")
    if user.scope == city_id:
        return EVERYTHING
    return Scope(within=user.scope, reporter=user.username if user.role in INTAKE_ROLES else None)


def text_search(user: User, text: str) -> TextSearch:
    """A search may match only what the searcher may see: the stored text of cases whose caller
    they may see (admins: all; an operator: the calls they took), the masked text elsewhere.
    The same rule as the caller mask in the case views (`may_see_caller`)."""
    if user.role == "admin":
        return TextSearch(text, raw_for_all=True)
    if user.role == "operator":
        return TextSearch(text, raw_for_creator=user.username)
    return TextSearch(text)


def in_scope(user: User, case: dict, city_id: str) -> bool:
    """The case lies in the user's jurisdiction (or, for a department, was assigned to it)."""
    if user.role == "admin":
        return True
    if user.role == "department":
        return bool(user.department) and user.department in (case.get("departments_seen") or [])
    return user.scope == city_id or user.scope in (case.get("scope_path") or [])


def can_read_case(user: User, case: dict, city_id: str) -> bool:
    """`case_scope` for one document in hand."""
    return case_scope(user, city_id).admits(case)


# -- acting on a case ----------------------------------------------------------------------
#
# Reading decides whether a case exists for the user at all (404 otherwise); acting adds the
# role the action requires and, for a department, its link to the case: most department
# actions need the case to be assigned to it *now* (having seen it before is not enough), and
# 报到 needs a pending summons (吹哨).

ASSIGNED = "assigned"
SUMMONED = "summoned"
# 协办 (joint handling): a supporting department acts on its own part of the case
# (`case.support`, dispatch.workflow.joint): sign it while it waits, then give its feedback.
SUPPORT_TO_SIGN = "support_to_sign"
SUPPORT_TO_FEED = "support_to_feed"
SUPPORT_PART_STATUS = {SUPPORT_TO_SIGN: "dispatched", SUPPORT_TO_FEED: "signed"}


def is_assigned_department(user: User, case: dict) -> bool:
    department = ((case.get("assignment") or {}).get("department")) or {}
    return bool(user.department) and department.get("id") == user.department


def is_summoned_department(user: User, case: dict) -> bool:
    """A summons not yet answered with 报到."""
    return bool(user.department) and any(
        s["department"]["id"] == user.department and s.get("checked_in_at") is None
        for s in case.get("summons") or []
    )


def support_part(user: User, case: dict) -> dict | None:
    """The user's department's part of a jointly handled case (协办), if it has one."""
    if not user.department:
        return None
    return next((p for p in case.get("support") or [] if p["department"]["id"] == user.department), None)


def department_link_holds(user: User, case: dict, link: str) -> bool:
    if user.role != "department":
        return True
    if link == SUMMONED:
        return is_summoned_department(user, case)
    if link in SUPPORT_PART_STATUS:
        part = support_part(user, case)
        return part is not None and part.get("status") == SUPPORT_PART_STATUS[link]
    return is_assigned_department(user, case)


def action_refusal(user: User, case: dict, city_id: str, roles, link: str = ASSIGNED) -> ApiError | None:
    """Why `user` may not act on `case` with an action open to `roles`, or None if they may.

    Scope is part of reading: a user who cannot read the case gets the same 404 as for a case
    that does not exist.
    """
    if not can_read_case(user, case, city_id):
        return not_found("案件不存在或不在您的权限范围内", code="case_not_found")
    if not in_scope(user, case, city_id):
        # A reporter reads a case they reported outside their jurisdiction; acting on it
        # belongs to the people of the place where it lies.
        return forbidden("此案件不在您的辖区内，只能查看", code="scope_forbidden")
    if user.role not in roles:
        return forbidden(f"角色 {user.role} 无权执行此操作", code="role_forbidden")
    if not department_link_holds(user, case, link):
        if link == SUMMONED:
            return forbidden("本部门未被召集到此案件，或已经报到", code="not_summoned")
        if link in SUPPORT_PART_STATUS:
            return _support_refusal(user, case, link)
        return forbidden("此案件当前未派遣给本部门", code="not_assigned")
    return None


def _support_refusal(user: User, case: dict, link: str) -> ApiError:
    part = support_part(user, case)
    if part is None:
        return forbidden("本部门不是此案件的协办部门", code="not_supporting")
    done = "已签收" if link == SUPPORT_TO_SIGN and part.get("status") == "signed" else "尚未签收或已反馈"
    if link == SUPPORT_TO_FEED and part.get("status") == "dispatched":
        done = "尚未签收"
    return conflict(f"本部门的协办任务{done}", code="support_part_state", part_status=part.get("status"))


def may_act(user: User, case: dict, city_id: str, roles, link: str = ASSIGNED) -> bool:
    return action_refusal(user, case, city_id, roles, link) is None


def report_scope(user: User, city, requested: str | None) -> str:
    """The jurisdiction a KPI report may cover: the requested one if it lies inside the user's
    own scope (admins: any), else 403; an unknown id is 422."""
    scope = requested or user.scope
    if scope != city.id and scope not in city.jurisdictions:
        raise unprocessable(f"未知的辖区 {scope}", code="unknown_scope", field="scope")
    if user.role != "admin" and user.scope not in city.ancestors(scope):
        raise forbidden("只能查看本辖区范围内的统计", code="scope_forbidden")
    return scope


# -- unmasking a caller (reveal) -----------------------------------------------------------
#
# `auth.reveal_roles` lists who may unmask a case's caller: a role name (every user of that role
# who can read the case) or a relation between an operator and the case.

CALL_TAKER = "call_taker"  # the operator who took the call
CALLBACK_OPERATOR = "callback_operator"  # an operator doing (or who did) the 回访 callback
REVEAL_RELATIONS = {CALL_TAKER: "operator", CALLBACK_OPERATOR: "operator"}  # relation → its role
REVEAL_RULES = (*REVEAL_RELATIONS, *ROLES)


def is_call_taker(user: User, case: dict) -> bool:
    return user.role == "operator" and case.get("created_by") == user.username


def may_see_caller(user: User | None, case: dict) -> bool:
    """Only the operator who took the call, and admins, see the caller unmasked in every view;
    anyone else who may unmask does it through the audited reveal."""
    return user is not None and (user.role == "admin" or is_call_taker(user, case))


def may_see_merged_caller(user: User | None, entry: dict) -> bool:
    """A caller of a repeat merged into a case (`case.callers`): unmasked for admins and for the
    operator who took that call, as the caller of a case of one's own."""
    return user is not None and (user.role == "admin" or (user.role == "operator" and entry.get("taken_by") == user.username))


def is_callback_operator(user: User, case: dict, city_id: str) -> bool:
    """An operator who may take the hotline case's `check` (回访) now, or who recorded a callback."""
    if user.role != "operator" or case.get("source") != "hotline":
        return False
    callbacks = list(case.get("callbacks") or []) + [case.get("callback") or {}]
    if any(isinstance(c, dict) and c.get("by") == user.username for c in callbacks):
        return True
    from dispatch.workflow.transitions import TRANSITIONS  # the closed loop's table says who checks

    check = TRANSITIONS["check"]
    return case.get("status") in check.from_states and may_act(user, case, city_id, check.roles_for(case), check.link)


def reveal_refusal(user: User, case: dict, city_id: str, reveal_roles) -> ApiError | None:
    """Why `user` may not unmask the caller of `case`, or None if they may."""
    if not can_read_case(user, case, city_id):
        return not_found("案件不存在或不在您的权限范围内", code="case_not_found")
    if user.role not in {REVEAL_RELATIONS.get(rule, rule) for rule in reveal_roles}:
        return forbidden(f"角色 {user.role} 无权查看来电人信息", code="role_forbidden")
    if may_reveal_caller(user, case, city_id, reveal_roles):
        return None
    return forbidden("只有受理此来电或负责回访此案件的接线员可以查看来电人信息", code="not_case_operator")


def may_reveal_caller(user: User, case: dict, city_id: str, reveal_roles) -> bool:
    if not can_read_case(user, case, city_id):
        return False
    for rule in reveal_roles:
        if rule == user.role \
                or (rule == CALL_TAKER and is_call_taker(user, case)) \
                or (rule == CALLBACK_OPERATOR and is_callback_operator(user, case, city_id)):
            return True
    return False


# -- administering the city (SPEC §9) ---------------------------------------------------------
#
# An admin whose scope is the city edits everything. An admin scoped to a jurisdiction (a
# district's 城运中心) edits only what lies inside it: departments serving a place inside it, the
# rules that assign to such a department by id, and accounts scoped inside it. Categories, zones,
# door plates, the calendar, the fallback and rules by department type are the city's.

def is_city_admin(user: User, city) -> bool:
    return user.role == "admin" and user.scope == city.id


def _inside(user: User, city, jurisdiction_id) -> bool:
    return isinstance(jurisdiction_id, str) and user.scope in city.ancestors(jurisdiction_id)


DISTRICT_KINDS = ("departments", "rules")  # what a district's admin may edit (its own items of)


# The knowledge base answers callers anywhere in the city: any admin keeps it, whole, as they
# keep its articles one by one (("knowledge", "manage")).
UNSCOPED_KINDS = ("knowledge",)


def may_edit_config(user: User, city, kind: str) -> bool:
    """Whether `user` may change any item of `kind` (the pages show the editor or a read-only view)."""
    if kind in UNSCOPED_KINDS:
        return permitted(user, "knowledge", "manage")
    return is_city_admin(user, city) or (user.role == "admin" and kind in DISTRICT_KINDS)


def config_refusal(user: User, city, kind: str, before, after) -> ApiError | None:
    """Why `user` may not replace the items `before` of `kind` by `after`, or None."""
    if is_city_admin(user, city):
        return None
    if kind in UNSCOPED_KINDS:
        return None if may_edit_config(user, city, kind) else forbidden("无权修改知识库", code="forbidden")
    from dispatch.admin.diff import keyed  # what changed, item by item

    old, new = keyed(kind, before), keyed(kind, after)
    touched = [k for k in {**old, **new} if old.get(k) != new.get(k)]
    outside = []
    for key in touched:
        for item in (old.get(key), new.get(key)):
            if item is None:
                continue
            if kind == "departments":
                ok = isinstance(item, dict) and _inside(user, city, item.get("jurisdiction"))
            elif kind == "rules":
                assign = item.get("assign") if isinstance(item, dict) else None
                target = city.departments.get(assign.get("department")) if isinstance(assign, dict) else None
                ok = key != "fallback" and target is not None and _inside(user, city, target.jurisdiction)
            else:
                ok = False
            if not ok:
                outside.append(key)
                break
    if kind not in DISTRICT_KINDS:
        return forbidden("只有市级管理员可以修改此项配置", code="scope_forbidden")
    if outside:
        return forbidden(f"超出您的管辖范围，不能修改: {', '.join(outside[:10])}", code="scope_forbidden")
    return None


def rollback_refusal(user: User, city) -> ApiError | None:
    """A rollback may touch every kind: the city's admins only."""
    if is_city_admin(user, city):
        return None
    return forbidden("只有市级管理员可以回滚配置", code="scope_forbidden")


def account_refusal(user: User, city, account_scope: str | None) -> ApiError | None:
    """An admin manages the accounts scoped inside their own scope."""
    if is_city_admin(user, city) or (account_scope is not None and account_scope != city.id
                                     and account_scope in city.jurisdictions and _inside(user, city, account_scope)):
        return None
    return forbidden("只能管理本辖区范围内的账号", code="scope_forbidden")
