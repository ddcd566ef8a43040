"""Routing rules: locate a point in the jurisdiction chain and pick the responsible department.

    from dispatch.rules import Router, RouteDecision, OutsideCity, UnknownCategory
    router = Router(city)
    d = router.route(lng, lat, "0105", source="grid", text="河道有漂浮物")
"""

from dispatch.rules.engine import (
    InvalidLocation,
    OutsideCity,
    RouteDecision,
    Router,
    UnknownCategory,
    UnknownSource,
    ZONE_KIND_NAMES,
)
from geo.city import Rule, RuleSet

__all__ = [
    "Router",
    "RouteDecision",
    "OutsideCity",
    "UnknownCategory",
    "UnknownSource",
    "InvalidLocation",
    "Rule",
    "RuleSet",
    "ZONE_KIND_NAMES",
]
