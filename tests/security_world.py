"""A small city with one account per (role, scope) that matters, and four cases placed so that
every role's view differs: the ground truth the security tests check every read path against.

    cA  hotline ticket by op1 in grid G1 (district A, street A1), caller 张三丰 13812345678,
        the number also typed into the content; dispatched to A1-so (一街道办事处)
    cB  hotline ticket by op1 in grid GB1A (district B, street B1), caller 李四 13900001111;
        dispatched to B1-so
    cG  grid report by gw1 in its own grid G1 (category 0105, stays `reported`)
    cO  grid report by gw1 in its grid, moved (relocate) by the city dispatcher into district B:
        gw1, its reporter, may read it there, not act on it
"""

from __future__ import annotations

import pytest

from small_city import A, A1, B, B1, CITY_ID, G1, GB1A  # noqa: F401 - re-exported for the security tests
from world import (  # noqa: F401 - the one test world (tests/world.py), re-exported
    B_POINT, G1_POINT, NAME_A, NAME_B, PASSWORD, PHONE_A, PHONE_B, World, city_data, close_world, make_world,
)

# Who sees which of the four cases: the rule of dispatch.access.policy written out by hand.
VISIBLE = {
    "admin": {"cA", "cB", "cG", "cO"},
    "op1": {"cA", "cB", "cG", "cO"},
    "op2": {"cA", "cB", "cG", "cO"},
    "disp-city": {"cA", "cB", "cG", "cO"},
    "cmd-city": {"cA", "cB", "cG", "cO"},
    "disp-a": {"cA", "cG"},
    "cmd-a": {"cA", "cG"},
    "cmd-a1": {"cA", "cG"},
    "gw1": {"cA", "cG", "cO"},  # its grid, plus what it reported elsewhere
    "disp-b": {"cB", "cO"},
    "cmd-b1": {"cB", "cO"},
    "gw-b": {"cB", "cO"},
    "a1so": {"cA"},
    "b1so": {"cB"},
    "water-a": set(),
}



@pytest.fixture
async def world(tmp_path_factory):
    """The security tests' world: the four placed cases (`populate`), no configuration changed."""
    w = await make_world(tmp_path_factory)
    yield w
    await close_world(w)


__all__ = ["A", "A1", "B", "B1", "CITY_ID", "G1", "GB1A", "World", "make_world", "close_world", "VISIBLE"]
