"""Demo traffic: `python server.py --simulate` makes the demo city look like a working day.

The simulator plays every actor of the closed loop through the same code paths as the people
using the pages: grid workers report (`ctx.intake.report`), 12345 operators log calls
(`ctx.intake.ticket`), and the dispatcher, the departments, the grid workers and the operators
move the cases on with `ctx.workflow.act(user, case_id, action, body)`. Every change therefore
lands in the store, in the history hash chain and on the live feed exactly as a user's would.

What it produces:

* **Arrivals** — a non-homogeneous Poisson stream of `rate_per_minute` cases per minute on
  average over a day, shaped by a daily rhythm (patrols in the morning and afternoon, calls into
  the evening, almost nothing at night); a category mix weighted like a real city (暴露垃圾,
  占道经营, 机动车乱停放 ... dominate); places clustered around hot spots (湖滨, 武林广场,
  西湖文化广场, 钱江新城, 城站 ...) with a background spread over the whole city, every point
  checked with `ctx.router.locate`; hotline calls written in the callers' own words.
* **The loop** — each case is *visited* when its current state calls for somebody: the
  dispatcher files or voids, dispatches (re-dispatches after a 退单); the assigned department
  signs, sometimes returns a case, asks for an extension, gives feedback; the grid worker checks
  (sometimes sends it back: 返工), the operator calls back (满意 / 基本满意 / 不满意); the
  dispatcher closes. Delays are drawn against each stage's real deadline: most work is done in
  good time, some in the warning zone, a few late (`late_share`), so the KPIs are believable.
  Overdue cases attract the commander's 督办.
* **Reactions to people** — the simulator listens to the event bus: a case a person created or
  moved is picked up from its new state (a case the demo user dispatches is then signed and
  handled by the simulated department). A simulated visit that a person beat to it gets a 409
  and is simply re-planned.

Time. Live (`run`), actions are stamped by the real clock and `speed` compresses the actors'
delays and the arrival gaps (speed 10: ten times the traffic, work done ten times faster); the
deadlines stay the city's real ones, so at high speeds only the deliberately late cases overrun.
Before going live, `warmup_hours` of the past are simulated on a `SimClock` so the screens open
on a day already under way. Tests drive the same `SimClock` with `step()`.

While a `SimClock` drives (`driving_clock`), the application's one clock (`ctx.clock`) follows
it, and the simulator runs the deadline sweep itself at simulated time; both are
restored afterwards. Users' actions arriving during those seconds are stamped with simulated
time too — the warm-up is meant for a demo server at start-up, not for a production one.

Deterministic: with `seed` set and the same clock start, the same cases are created and the
same actions taken in the same order (`journal` records them).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import math
import random
from collections import Counter, deque
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

from dispatch.access.auth import User
from dispatch.config import ConfigError
from dispatch.domain import LEVELS, OPEN_STATUSES, utcnow
from dispatch.errors import ApiError
from dispatch.store.query import OLDEST, CaseQuery
from dispatch.sweep.sweeper import run_sweep
from dispatch.clock import stored_instant

log = logging.getLogger(__name__)

DEFAULTS = {
    "rate_per_minute": 6.0,   # new cases per minute, averaged over a day
    "seed": None,             # an int makes the stream reproducible
    "speed": 1.0,             # live mode: how much faster than real time the actors work
    "warmup_hours": 2,        # hours of the past simulated at start, so the day looks under way
    "hotline_share": 0.35,    # share of 12345 tickets among the arrivals
    "late_share": 0.06,       # share of stages finished after their deadline
}

SIM_SWEEP_SECONDS = 60  # how often the deadline sweep runs while a SimClock drives
# On-time work is spread over at most this much of a stage's limit (a 5-working-day limit is
# not a reason to take four days); the late share still runs past the real deadline.
STAGE_USUAL_SECONDS = {"handle_by": 5 * 3600, "check_by": 2 * 3600}
MAX_RETRIES = 3  # refused visits to one case before the simulator leaves it to people


# --------------------------------------------------------------------------------------------
# Clock
# --------------------------------------------------------------------------------------------


class SimClock:
    """A settable clock: `now()` is what the simulated world reads (UTC, milliseconds)."""

    def __init__(self, start: datetime):
        if start.tzinfo is None:
            raise ValueError("SimClock needs an aware datetime")
        self._now = _ms(start)

    def now(self) -> datetime:
        return self._now

    def set(self, moment: datetime) -> None:
        if moment > self._now:
            self._now = _ms(moment)

    def advance(self, seconds: float) -> datetime:
        self.set(self._now + timedelta(seconds=seconds))
        return self._now


_ms = stored_instant


# --------------------------------------------------------------------------------------------
# The daily rhythm and the mix
# --------------------------------------------------------------------------------------------

# Relative activity per local hour (0..23); each list is normalised to a mean of 1.
_GRID_HOURS = [0.05, 0.03, 0.02, 0.02, 0.03, 0.1, 0.35, 0.95, 1.7, 2.1, 2.2, 1.9,
               1.0, 1.1, 1.9, 2.0, 1.9, 1.5, 0.8, 0.6, 0.5, 0.35, 0.2, 0.1]
_HOTLINE_HOURS = [0.25, 0.15, 0.1, 0.08, 0.08, 0.15, 0.35, 0.8, 1.5, 1.9, 1.9, 1.6,
                  1.1, 1.2, 1.7, 1.7, 1.6, 1.4, 1.2, 1.3, 1.2, 1.0, 0.7, 0.45]


def _normalised(values: list[float]) -> list[float]:
    mean = sum(values) / len(values)
    return [v / mean for v in values]


GRID_RHYTHM = _normalised(_GRID_HOURS)
HOTLINE_RHYTHM = _normalised(_HOTLINE_HOURS)


def rhythm(table: list[float], local: datetime) -> float:
    """Activity at a local time, interpolated between the hourly values."""
    hour = local.hour + local.minute / 60
    low = int(hour) % 24
    frac = hour - int(hour)
    return table[low] * (1 - frac) + table[(low + 1) % 24] * frac


# Grid reports: weights by category *name* (codes are the city's own data).
GRID_MIX = {
    "暴露垃圾": 18, "占道经营": 12, "机动车乱停放": 12, "非机动车乱停放": 8, "店外经营": 8,
    "非法小广告": 7, "道路不洁": 6, "无照经营游商": 5, "积存垃圾渣土": 4, "路灯": 4,
    "垃圾箱": 3, "道路破损": 3, "绿地脏乱": 2, "违规户外广告": 2, "工地扬尘": 1.5,
    "私搭乱建": 1.5, "行道树": 1.5, "雨水井盖": 1, "污水井盖": 1, "上水井盖": 0.6,
    "雨水箅子": 1, "交通护栏": 1, "施工扰民": 1, "水域不洁": 1, "通讯井盖": 0.5,
    "电力井盖": 0.4, "燃气井盖": 0.2, "消防栓": 0.5, "公共厕所": 0.5, "交通信号灯": 0.5,
    "违规标语横幅": 0.5, "公交站亭": 0.5, "道路积水": 0.5, "路面塌陷": 0.15,
    "自来水管爆裂": 0.2, "燃气管道破损": 0.08, "垃圾间": 0.4, "绿地": 0.5, "古树名木": 0.1,
    "报刊亭/信息亭": 0.2, "停车场": 0.3,
}
HOTLINE_MIX = {
    "投诉": 26, "咨询": 15, "噪声扰民": 12, "求助": 11, "举报": 7, "物业纠纷": 8, "交通出行": 5,
    "社保咨询": 5, "建议": 4, "市场价格": 3, "医疗卫生": 3, "表扬": 2, "复杂疑难": 1,
}
# The ticket type of each hotline category; the rest are complaints.
TICKET_TYPE = {"咨询": "consultation", "社保咨询": "consultation", "求助": "help", "举报": "report",
               "建议": "suggestion", "表扬": "praise", "投诉": "complaint"}
CHANNEL_MIX = {"12345": 80, "wechat": 9, "web": 6}
CHANNEL_OF = {"市场价格": ("12315", 0.5), "社保咨询": ("12333", 0.5), "噪声扰民": ("12369", 0.15),
              "交通出行": ("12328", 0.3)}


@dataclass(frozen=True)
class HotSpot:
    name: str
    lng: float
    lat: float
    radius_m: float
    weight: float
    roads: tuple


HOT_SPOTS = (
    HotSpot("湖滨", 120.1608, 30.2585, 450, 5, ("东坡路", "平海路", "湖滨路", "延安路", "仁和路")),
    HotSpot("武林广场", 120.1650, 30.2785, 450, 4, ("体育场路", "延安路", "武林路", "环城北路")),
    HotSpot("西湖文化广场", 120.1642, 30.2849, 400, 3, ("中山北路", "环城北路", "朝晖路")),
    HotSpot("钱江新城", 120.2063, 30.2485, 650, 4, ("富春路", "民心路", "之江路", "钱江路")),
    HotSpot("城站", 120.1776, 30.2466, 450, 4, ("环城东路", "城站路", "江城路", "建国南路")),
    HotSpot("河坊街", 120.1660, 30.2435, 350, 2, ("河坊街", "中山中路", "大井巷")),
    HotSpot("庆春路", 120.1780, 30.2620, 500, 2, ("庆春路", "建国北路", "中河中路")),
    HotSpot("黄龙", 120.1420, 30.2700, 500, 1.5, ("曙光路", "黄龙路", "杭大路")),
    HotSpot("滨江星光大道", 120.2070, 30.2060, 600, 1.5, ("江南大道", "滨盛路", "江虹路")),
)
HOT_SPOT_SHARE = 0.55  # of grid reports; the rest spread over the city's streets
CORE_DISTRICT_WEIGHT = 5.0  # background weight of a street in a district that has unit grids (others 0.5)

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗郑梁谢宋唐许韩冯邓曹彭曾萧田董潘袁蔡蒋余于杜叶程魏苏吕丁任沈姚卢钟姜崔谭陆汪范金石廖贾夏韦方白邹孟熊秦邱江尹薛"

# --------------------------------------------------------------------------------------------
# What people write
# --------------------------------------------------------------------------------------------

GRID_TEXTS = {
    "暴露垃圾": ["{where}人行道旁堆放生活垃圾约{n}袋，未及时清运，有异味",
                 "{where}垃圾桶满溢，周边散落垃圾，影响市容",
                 "{where}绿化带内有人丢弃装修垃圾和生活垃圾"],
    "积存垃圾渣土": ["{where}空地积存建筑渣土约{n}方，未覆盖", "{where}路边堆有渣土和碎砖，影响通行"],
    "道路不洁": ["{where}路面有大片油污和泥浆，行人易滑倒", "{where}人行道落叶和烟头较多，未及时清扫"],
    "非法小广告": ["{where}电线杆和墙面张贴小广告{n}处", "{where}公交站亭被喷涂办证类小广告"],
    "占道经营": ["{where}有流动摊贩占用人行道摆摊卖水果，影响通行", "{where}早餐摊占道经营，桌椅摆放至人行道",
                 "{where}夜宵摊占道经营，油烟较大"],
    "店外经营": ["{where}沿街商铺将货架摆放至店外经营", "{where}餐饮店在店门外摆放桌椅经营"],
    "无照经营游商": ["{where}有三轮车流动叫卖，无经营证照", "{where}路口有游商兜售小商品"],
    "机动车乱停放": ["{where}有{n}辆机动车停放在人行道上，影响行人通行", "{where}消防通道被私家车占用",
                     "{where}路口机动车违停，造成拥堵"],
    "非机动车乱停放": ["{where}共享单车大量堆放，占用盲道", "{where}电动自行车乱停放，堵塞人行道"],
    "路灯": ["{where}路灯不亮，共{n}盏，夜间行人通行不便", "{where}路灯灯杆倾斜，存在安全隐患"],
    "垃圾箱": ["{where}垃圾箱破损，盖子缺失", "{where}果壳箱倾倒，内桶丢失"],
    "道路破损": ["{where}人行道地砖松动破损约{n}平方米", "{where}车行道出现坑槽，车辆经过颠簸"],
    "绿地脏乱": ["{where}绿地内有垃圾和杂物堆放", "{where}绿化带被踩踏，泥土裸露"],
    "违规户外广告": ["{where}商铺擅自设置落地广告牌", "{where}墙面悬挂大型广告布，未经审批"],
    "违规标语横幅": ["{where}有未经审批的宣传横幅悬挂在行道树上"],
    "工地扬尘": ["{where}工地出入口未冲洗车辆，路面扬尘较大", "{where}工地裸土未覆盖，扬尘明显"],
    "施工扰民": ["{where}工地夜间施工，噪声较大"],
    "私搭乱建": ["{where}一楼住户在公共区域搭建彩钢棚", "{where}沿街商铺擅自搭建雨棚"],
    "行道树": ["{where}行道树倾斜，有倒伏危险", "{where}行道树枯枝悬挂，存在安全隐患"],
    "水域不洁": ["{where}河面漂浮垃圾和水草较多", "{where}河道内有白色垃圾"],
    "道路积水": ["{where}路面积水约{n}0厘米深，车辆通行困难"],
    "路面塌陷": ["{where}车行道出现塌陷坑，直径约{n}米，已临时围挡"],
    "自来水管爆裂": ["{where}地下自来水管爆裂，路面大量冒水"],
    "燃气管道破损": ["{where}施工挖破燃气管道，现场有燃气味，已疏散行人"],
    "交通护栏": ["{where}道路隔离护栏被撞倒{n}节", "{where}人行道护栏松动变形"],
    "交通信号灯": ["{where}路口信号灯不亮，交通秩序混乱", "{where}人行横道信号灯故障"],
    "公交站亭": ["{where}公交站亭玻璃破损", "{where}公交站亭顶棚漏水"],
    "公共厕所": ["{where}公共厕所洗手池堵塞，卫生较差", "{where}公厕照明损坏"],
    "消防栓": ["{where}消防栓漏水", "{where}消防栓被车辆撞倒"],
}
WELL_TEXTS = ["{where}{name}破损，存在安全隐患", "{where}{name}缺失，已放置临时警示", "{where}{name}下沉，与路面高差明显"]
DEFAULT_GRID_TEXTS = ["{where}发现{name}问题，需相关部门处理"]

HOTLINE_TEXTS = {
    "投诉": ["来电人反映{address}附近有商户长期占道经营，多次反映未解决，要求相关部门加强管理。",
             "来电人反映{address}小区门口机动车乱停放，早晚高峰出行困难，希望尽快处理。",
             "来电人反映{address}附近垃圾清运不及时，气味很大，夏季蚊蝇多，要求处理。",
             "来电人投诉{address}一家餐饮店油烟直排，影响楼上住户，希望相关部门核查。"],
    "噪声扰民": ["来电人反映{address}附近工地每天晚上十点后仍在施工，噪声很大，严重影响休息，要求处理。",
                 "来电人反映{address}楼下酒吧音乐声音很大，持续到凌晨，希望相关部门管理。",
                 "来电人反映{address}附近广场舞音响声音过大，影响居民休息。"],
    "求助": ["来电人称{address}附近路灯已坏多日，晚上老人出行不安全，请求尽快修复。",
             "来电人称{address}路面有一处井盖松动，车辆压过响声很大，担心有安全隐患，请求处理。",
             "来电人称{address}小区地下室积水，请求相关部门帮助排水。"],
    "举报": ["来电人举报{address}有人非法倾倒建筑垃圾，请相关部门查处。",
             "来电人举报{address}一门面无证经营，存在消防隐患。"],
    "物业纠纷": ["来电人反映{address}小区物业电梯长期故障不修，业主出行不便，要求协调处理。",
                 "来电人反映{address}小区物业擅自提高停车费，业主有异议，请求相关部门协调。"],
    "交通出行": ["来电人反映{address}路口红绿灯时间设置不合理，行人过街等待时间过长，建议调整。",
                 "来电人反映{address}公交站台附近共享单车堆放，影响乘客上下车。"],
    "咨询": ["来电人咨询{address}附近的垃圾分类投放点开放时间。", "来电人咨询办理居住证需要准备哪些材料。",
             "来电人咨询杭州市新能源汽车牌照申请条件。"],
    "社保咨询": ["来电人咨询灵活就业人员社保缴费基数及缴费方式。", "来电人咨询异地就医备案如何办理。"],
    "建议": ["来电人建议在{address}附近增设非机动车停放点。", "来电人建议{address}路段增设人行横道。"],
    "市场价格": ["来电人反映{address}附近一家超市商品标价与结账价格不一致，要求处理。"],
    "医疗卫生": ["来电人反映{address}附近一家诊所环境卫生较差，请相关部门核查。"],
    "表扬": ["来电人表扬{address}环卫工人工作认真负责，道路保洁及时。",
             "来电人表扬辖区城管队员处理占道经营问题及时、态度好。"],
    "复杂疑难": ["来电人反映{address}小区加装电梯事宜，楼上楼下住户意见不一，多次协调未果，请求相关部门介入。"],
}
ANSWERS = {
    "咨询": "已根据相关政策向来电人解答，来电人表示清楚。",
    "社保咨询": "已向来电人解释社保缴费及办理流程，来电人无异议。",
    "表扬": "已记录来电人的表扬，将转达相关单位。",
}
FEEDBACK_TEXTS = {
    "市容环境": ["已安排保洁人员清理完毕，现场已恢复整洁。", "已清运垃圾并对周边进行冲洗，现场整洁。"],
    "街面秩序": ["已到场劝离，对当事人进行教育并责令整改，现场秩序已恢复。", "已联系车主挪车，并张贴温馨提示，现场已恢复。"],
    "公用设施": ["已安排维修人员到场更换修复，设施恢复正常使用。", "已设置警示围挡并完成修复。"],
    "道路交通": ["已通知养护单位修复，现已恢复正常。"],
    "园林绿化": ["已安排绿化养护人员修剪清理，现场已处置完毕。"],
    "宣传广告": ["已责令当事人自行拆除，现场已清理。"],
    "施工管理": ["已约谈施工单位，责令落实降尘降噪措施，现场已整改。"],
    "突发事件": ["已组织抢修，险情已排除，现场恢复通行。"],
}
HOTLINE_FEEDBACK = ["已联系来电人并到现场核实，问题已处理，来电人表示认可。",
                    "经现场核查，已督促责任方整改完毕，并向来电人做了解释。",
                    "已协调相关单位处理，后续将加强日常巡查。"]
RETURN_REASONS = ["该点位不属于本单位管辖范围，请重新派遣。", "经现场核实，问题属于小区物业管理范围，非本单位职责。",
                  "涉及专业设施，需由权属单位处理，请改派。"]
VOID_REASONS = ["重复上报，同一问题已有在办案件。", "经核实问题不存在。", "不属于本平台受理范围，已告知来电人其他渠道。"]
REWORK_NOTES = ["现场复核仍有部分垃圾未清理，要求返工。", "问题未彻底整改，现场仍有违停车辆。", "设施仍未修复，退回重办。"]
EXTENSION_REASONS = ["需协调产权单位共同处理，申请延期。", "需采购材料，无法在时限内完成。"]
SUPERVISE_NOTES = ["该案件已超期，请责任单位立即处置并及时反馈。", "超期未办结，请加快处置进度。"]


# --------------------------------------------------------------------------------------------
# The cast: who plays each part
# --------------------------------------------------------------------------------------------


class Cast:
    """The city's bootstrap users where one fits, stand-ins where the demo has nobody.

    The demo ships one dispatcher, one operator, two grid workers and a few department
    accounts; the other departments and grids get stand-in `User` objects (never stored,
    so nobody can log in as them) with the same role, scope and department a real one has.
    A stand-in's username is what the history shows, so it reads like a person on duty:
    "湖滨街道办事处值班员", "东坡路社区网格员".
    """

    def __init__(self, ctx):
        self.ctx = ctx
        city = ctx.city
        self.users = [User(u["username"], u["role"], str(u["scope"]), u.get("department"), u.get("name"))
                      for u in city.users]
        self.dispatcher = self._city_user("dispatcher", "sim-dispatcher", "值班派遣员")
        self.operator = self._city_user("operator", "sim-operator", "12345 话务员")
        self.commander = self._city_user("commander", "sim-commander", "值班指挥长")
        self._stand_ins: dict[tuple, User] = {}

    @property
    def city(self):
        """The configuration version the server serves now: a department or grid an admin
        publishes while the simulator runs gets its stand-in like any other."""
        return self.ctx.city

    def _city_user(self, role: str, username: str, name: str) -> User:
        for user in self.users:
            if user.role == role and user.scope == self.city.id:
                return user
        return User(username, role, self.city.id, None, name)

    def grid_worker(self, scope_path: list[str]) -> User:
        """A grid worker whose scope covers the place (deepest first)."""
        for jid in reversed(scope_path):
            for user in self.users:
                if user.role == "grid_worker" and user.scope == jid:
                    return user
        # Stand-in for the community (or street) the place lies in.
        for jid in reversed(scope_path):
            node = self.city.jurisdictions.get(jid)
            if node is not None and node.level in ("community", "street"):
                return self._stand_in(jid, "grid_worker", jid, None, f"{node.name}网格员")
        return self._stand_in(self.city.id, "grid_worker", self.city.id, None, f"{self.city.name}网格员")

    def department(self, department_id: str) -> User:
        for user in self.users:
            if user.role == "department" and user.department == department_id:
                return user
        department = self.city.departments[department_id]
        return self._stand_in(department_id, "department", department.jurisdiction, department_id,
                              f"{department.name}值班员")

    def _stand_in(self, key: str, role: str, scope: str, department: str | None, name: str) -> User:
        user = self._stand_ins.get((role, key))
        if user is None:
            taken = {u.username for u in self.users} | {u.username for u in self._stand_ins.values()}
            username = name if name not in taken else f"{name}·{key}"
            user = self._stand_ins[(role, key)] = User(username, role, scope, department, name)
        return user


# --------------------------------------------------------------------------------------------
# The simulator
# --------------------------------------------------------------------------------------------

ARRIVE, VISIT, SUPERVISE, SWEEP = "arrive", "visit", "supervise", "sweep"


@dataclass
class Plan:
    seq: int
    status: str


class Simulator:
    def __init__(self, ctx, *, seed: int | None = None, rate_per_minute: float = DEFAULTS["rate_per_minute"],
                 speed: float = DEFAULTS["speed"], hotline_share: float = DEFAULTS["hotline_share"],
                 late_share: float = DEFAULTS["late_share"], warmup_hours: float = DEFAULTS["warmup_hours"],
                 clock: SimClock | None = None):
        if rate_per_minute <= 0 or speed <= 0:
            raise ValueError("simulator.rate_per_minute 与 simulator.speed 必须大于 0")
        self.ctx = ctx
        self.seed = seed
        self.rng = random.Random(seed)
        self.rate = float(rate_per_minute)
        self.speed = float(speed)
        self.hotline_share = float(hotline_share)
        self.late_share = float(late_share)
        self.warmup_hours = float(warmup_hours)
        self.sim_clock = clock
        self.cast = Cast(ctx)
        self.tz = ctx.tz
        self._agenda: list = []
        self._seq = itertools.count()
        self._plans: dict[str, Plan] = {}
        self._retries: Counter = Counter()
        self._supervise_planned: set[str] = set()
        self._intended: dict[str, tuple[float, float]] = {}  # true place of tickets given without one
        self._serial = itertools.count(1)
        self._run_id = None
        self.counts: Counter = Counter()
        self.errors = 0
        self.journal: deque = deque(maxlen=20000)
        self._unsubscribe: Callable | None = None
        self._self_sweep = clock is not None
        self._next_arrival_scheduled = False
        self._prepare_mix()

    @classmethod
    def from_config(cls, ctx, **overrides) -> "Simulator":
        conf = {**DEFAULTS, **(ctx.config.get("simulator") or {}), **overrides}
        try:
            seed = conf.get("seed")
            return cls(ctx, seed=None if seed in (None, "") else int(seed),
                       rate_per_minute=float(conf["rate_per_minute"]), speed=float(conf["speed"]),
                       hotline_share=float(conf["hotline_share"]), late_share=float(conf["late_share"]),
                       warmup_hours=float(conf["warmup_hours"] or 0))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"simulator 配置项无效: {exc}") from None

    # -- the clock -------------------------------------------------------------------------

    def now(self) -> datetime:
        return self.sim_clock.now() if self.sim_clock is not None else utcnow()

    @contextlib.contextmanager
    def driving_clock(self):
        """While inside, the application's clock (`ctx.clock`: workflow, intake, sweep, ...)
        follows the simulated one (see module doc)."""
        if self.sim_clock is None:
            raise RuntimeError("driving_clock needs a SimClock")
        with self.ctx.clock.following(self.sim_clock.now):
            yield self.sim_clock

    # -- starting and stopping -------------------------------------------------------------

    def start(self) -> None:
        """Listen to the case events and put the first arrival on the agenda (idempotent)."""
        if self._unsubscribe is None:
            self._unsubscribe = self.ctx.bus.subscribe(self._on_event)
        if self._run_id is None:
            self._run_id = self.now().astimezone(self.tz).strftime("%Y%m%d%H%M%S")
        if not self._next_arrival_scheduled:
            self._schedule_arrival(self.now())
            self._next_arrival_scheduled = True
        if self._self_sweep and not any(e[2] == SWEEP for e in self._agenda):
            self._push(self.now() + timedelta(seconds=SIM_SWEEP_SECONDS), SWEEP, None)

    def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    async def adopt_open_cases(self, limit: int = 5000) -> int:
        """Plan visits for the open cases already in the store (a restart on MongoDB)."""
        docs = await self.ctx.cases.find(CaseQuery(open_only=True, order=OLDEST, limit=limit))
        for doc in docs:
            self._plan(doc)
        return len(docs)

    async def step(self, seconds: float) -> int:
        """Advance the simulated clock by `seconds`, doing everything that falls due; returns
        the number of agenda items processed."""
        if self.sim_clock is None:
            raise RuntimeError("step() needs a SimClock")
        self.start()
        target = self.sim_clock.now() + timedelta(seconds=seconds)
        done = await self._run_until(target)
        self.sim_clock.set(target)
        return done

    async def warm_up(self, hours: float | None = None) -> int:
        """Simulate the last `hours` on a SimClock ending now, then hand over to the real clock."""
        hours = self.warmup_hours if hours is None else hours
        if hours <= 0:
            return 0
        real_clock = self.sim_clock
        self.sim_clock = SimClock(utcnow() - timedelta(hours=hours))
        self._self_sweep = True
        speed, self.speed = self.speed, 1.0  # the past runs at the pace of a real day
        done = 0
        try:
            with self.driving_clock():
                self.start()
                while self.sim_clock.now() < utcnow():
                    done += await self.step(min(300.0, (utcnow() - self.sim_clock.now()).total_seconds() + 0.001))
                await run_sweep(self.ctx, now=self.sim_clock.now())
        finally:
            self.sim_clock = real_clock
            self._self_sweep = real_clock is not None
            self.speed = speed
            self._agenda = [e for e in self._agenda if e[2] != SWEEP]
            heapq.heapify(self._agenda)
        log.info("模拟器预热: 模拟了过去 %.1f 小时, %s", hours, dict(self.counts))
        return done

    async def run(self, warm_up: bool = True) -> None:
        """Live mode: (warm up, then) follow the real clock until cancelled."""
        try:
            if warm_up:
                await self.prepare()
            self.start()
            log.info("模拟器运行中: 平均每分钟 %.1f 件, 速度 ×%g", self.rate, self.speed)
            while True:
                await self._run_until(utcnow())
                wait = 5.0
                if self._agenda:
                    wait = min(wait, max(0.05, (self._agenda[0][0] - utcnow()).total_seconds()))
                await asyncio.sleep(wait)
        except asyncio.CancelledError:
            log.info("模拟器已停止: %s", dict(self.counts))
            raise
        finally:
            self.stop()

    async def prepare(self) -> None:
        """Take over the open cases already stored (a restart on MongoDB), then warm up."""
        adopted = await self.adopt_open_cases()
        if adopted:
            log.info("模拟器接手 %d 件在办案件", adopted)
        if self.warmup_hours > 0:
            log.info("模拟器预热中: 正在模拟过去 %g 小时的业务……", self.warmup_hours)
            await self.warm_up()

    # -- the agenda ------------------------------------------------------------------------

    def _push(self, when: datetime, kind: str, data) -> int:
        seq = next(self._seq)
        heapq.heappush(self._agenda, (when, seq, kind, data))
        return seq

    async def _run_until(self, target: datetime) -> int:
        done = 0
        while self._agenda and self._agenda[0][0] <= target:
            when, seq, kind, data = heapq.heappop(self._agenda)
            if self.sim_clock is not None:
                self.sim_clock.set(when)
            try:
                await self._handle(kind, seq, data)
            except ApiError as exc:
                # A person (or the sweep) got there first: look again later.
                self.counts["conflicts"] += 1
                log.debug("模拟操作未执行 (%s): %s", exc.code, exc.message)
                if kind == VISIT and self._retries[data] < MAX_RETRIES:
                    self._retries[data] += 1
                    await self._replan(data, retry=True)
            except Exception:  # noqa: BLE001 - the simulator must outlive any single failure
                self.errors += 1
                log.exception("模拟器处理 %s 失败", kind)
            # Plan from the changes this step made before taking the next one: they reach the
            # bus through the event log, a moment after the write (the same day for one seed).
            await self.ctx.tail.caught_up()
            done += 1
        return done

    async def _handle(self, kind: str, seq: int, data) -> None:
        if kind == ARRIVE:
            await self._arrive()
        elif kind == VISIT:
            plan = self._plans.get(data)
            if plan is None or plan.seq != seq:
                return  # superseded by a later plan
            del self._plans[data]
            await self._visit(data)
        elif kind == SUPERVISE:
            await self._supervise(data)
        elif kind == SWEEP:
            await run_sweep(self.ctx, now=self.now())
            if self._self_sweep:
                self._push(self.now() + timedelta(seconds=SIM_SWEEP_SECONDS), SWEEP, None)

    # -- arrivals --------------------------------------------------------------------------

    def _prepare_mix(self) -> None:
        city = self.ctx.city
        grid = [(c, GRID_MIX.get(c.name, 0.3)) for c in city.categories.values() if c.kind in ("component", "event")]
        hotline = [(c, HOTLINE_MIX.get(c.name, 1.0)) for c in city.categories.values() if c.kind == "hotline"]
        self._grid_categories = grid
        self._hotline_categories = hotline
        if not hotline:
            self.hotline_share = 0.0
        streets = [j for j in city.jurisdictions.values() if j.level == "street"]
        # Districts with unit grids are the dense urban core: most background reports are there.
        core = {city.ancestors(j.id)[-2] for j in city.jurisdictions.values() if j.level == "grid"}
        self._streets = [(s, CORE_DISTRICT_WEIGHT if s.parent in core else 0.5) for s in streets]
        router = self.ctx.router
        self._spots = [s for s in HOT_SPOTS if router.locate(s.lng, s.lat) is not None]
        entries = list(getattr(city.addresses, "entries", []) or [])
        self._addresses = entries

    def _intensity(self, moment: datetime) -> float:
        """Expected arrivals per (simulated) second at `moment`."""
        local = moment.astimezone(self.tz)
        mix = (1 - self.hotline_share) * rhythm(GRID_RHYTHM, local) + self.hotline_share * rhythm(HOTLINE_RHYTHM, local)
        return self.rate / 60.0 * mix

    @property
    def _peak_intensity(self) -> float:
        peak = max((1 - self.hotline_share) * g + self.hotline_share * h for g, h in zip(GRID_RHYTHM, HOTLINE_RHYTHM))
        return self.rate / 60.0 * peak

    def _schedule_arrival(self, after: datetime) -> None:
        # Thinning (Lewis–Shedler): candidates at the peak rate, kept with λ(t)/λ_max.
        gap = self.rng.expovariate(self._peak_intensity * self.speed)
        self._push(after + timedelta(seconds=gap), ARRIVE, None)

    async def _arrive(self) -> None:
        now = self.now()
        self._schedule_arrival(now)
        if self.rng.random() * self._peak_intensity > self._intensity(now):
            return
        if self.rng.random() < self.hotline_share:
            await self._new_ticket()
        else:
            await self._new_report()

    def _weighted(self, pairs):
        total = sum(w for _, w in pairs)
        pick = self.rng.random() * total
        for item, weight in pairs:
            pick -= weight
            if pick <= 0:
                return item
        return pairs[-1][0]

    def _point_near(self, spot: HotSpot) -> tuple[float, float] | None:
        for _ in range(12):
            dx, dy = self.rng.gauss(0, spot.radius_m / 1.6), self.rng.gauss(0, spot.radius_m / 1.6)
            lat = spot.lat + dy / 111_320
            lng = spot.lng + dx / (111_320 * math.cos(math.radians(spot.lat)))
            chain = self.ctx.router.locate(round(lng, 6), round(lat, 6))
            if chain is not None:
                return round(lng, 6), round(lat, 6)
        return None

    def _point_in_street(self) -> tuple[float, float] | None:
        street = self._weighted(self._streets)
        minx, miny, maxx, maxy = street.geometry.bounds
        for _ in range(20):
            lng = round(self.rng.uniform(minx, maxx), 6)
            lat = round(self.rng.uniform(miny, maxy), 6)
            chain = self.ctx.router.locate(lng, lat)
            if chain and chain.get("street") and chain["street"]["id"] == street.id:
                return lng, lat
        return None

    def _place(self) -> tuple[tuple[float, float], str]:
        """A point in the city and how a grid worker would describe where it is."""
        spot = None
        point = None
        if self._spots and self.rng.random() < HOT_SPOT_SHARE:
            spot = self._weighted([(s, s.weight) for s in self._spots])
            point = self._point_near(spot)
        if point is None and self._streets:
            spot = None
            point = self._point_in_street()
        if point is None:  # a city without streets: its first hot spot or its centre
            minx, miny, maxx, maxy = self.ctx.city.bounds
            point = (round((minx + maxx) / 2, 6), round((miny + maxy) / 2, 6))
        chain = self.ctx.router.locate(*point) or {}
        if spot is not None:
            road = self.rng.choice(spot.roads)
            where = self.rng.choice([f"{road}{self.rng.randint(1, 300)}号附近", f"{road}与{self.rng.choice(spot.roads)}交叉口",
                                     f"{spot.name}{road}沿线"])
            if where.startswith(f"{road}与{road}"):
                where = f"{road}沿线"
        else:
            community = (chain.get("community") or {}).get("name")
            street = (chain.get("street") or {}).get("name", "")
            where = f"{street}{community or ''}" + self.rng.choice(["小区门口", "沿街", "公交站旁", "菜场周边", "路口"])
        return point, where

    def _client_id(self) -> str:
        return f"sim-{self._run_id}-{next(self._serial)}"

    async def _new_report(self) -> None:
        category = self._weighted(self._grid_categories)
        point, where = self._place()
        chain = self.ctx.router.locate(*point) or {}
        path = [self.ctx.city.id] + [chain[level]["id"] for level in LEVELS
                                     if chain.get(level)]
        reporter = self.cast.grid_worker(path)
        description = self._grid_text(category, where)
        body = {"category": category.code, "description": description,
                "location": {"type": "Point", "coordinates": list(point)}, "client_id": self._client_id()}
        result = await self.ctx.intake.report(reporter, body)
        self.counts["reports"] += 1
        self._log("report", result.case, category.code)

    def _grid_text(self, category, where: str) -> str:
        if "井盖" in category.name:
            templates = WELL_TEXTS
        else:
            templates = GRID_TEXTS.get(category.name, DEFAULT_GRID_TEXTS)
        return self.rng.choice(templates).format(where=where, n=self.rng.randint(2, 6), name=category.name)

    async def _new_ticket(self) -> None:
        category = self._weighted(self._hotline_categories)
        ticket_type = TICKET_TYPE.get(category.name, "complaint")
        channel = self._weighted(list(CHANNEL_MIX.items()))
        special = CHANNEL_OF.get(category.name)
        if special and self.rng.random() < special[1]:
            channel = special[0]
        body = {"channel": channel, "type": ticket_type, "category": category.code,
                "caller": {"name": self.rng.choice(SURNAMES) + self.rng.choice(["先生", "女士"]),
                           "phone": "1" + self.rng.choice("3578") + "".join(str(self.rng.randint(0, 9)) for _ in range(9))},
                "client_id": self._client_id()}
        roll = self.rng.random()
        intended = None
        if self._addresses and roll < 0.92:
            address, lng, lat = self._address_entry()
            body["address"] = address
            if roll < 0.7:
                body["location"] = {"type": "Point", "coordinates": [lng, lat]}  # the operator pinned it
            # else: address only, geocoded by the intake from the door plates
            place = address
        else:
            # A caller who cannot say exactly where: the ticket waits for a location.
            point, where = self._place()
            body["address"] = where.replace("附近", "") + "附近（来电人未能说明门牌）"
            place = where
            intended = point
        texts = HOTLINE_TEXTS.get(category.name) or ["来电人反映{address}的问题，请相关部门处理。"]
        body["content"] = self.rng.choice(texts).format(address=place)
        result = await self.ctx.intake.ticket(self.cast.operator, body)
        if (result.case.get("flags") or {}).get("needs_location"):
            self._intended[result.case["_id"]] = intended or self._place()[0]
        self.counts["tickets"] += 1
        self._log("ticket", result.case, category.code)

    def _address_entry(self) -> tuple[str, float, float]:
        if self._spots and self.rng.random() < 0.45:
            spot = self._weighted([(s, s.weight) for s in self._spots])
            for _ in range(30):
                entry = self.rng.choice(self._addresses)
                if abs(entry[1] - spot.lng) < 0.012 and abs(entry[2] - spot.lat) < 0.01:
                    return entry
        return self.rng.choice(self._addresses)

    # -- reacting to case events -----------------------------------------------------------

    def _on_event(self, event: dict) -> None:
        case = event.get("case") or {}
        if "_id" not in case:
            return
        try:
            self._plan(case)
        except Exception:  # noqa: BLE001 - a bus subscriber must never raise
            self.errors += 1
            log.exception("模拟器无法安排案件 %s", case.get("_id"))

    def _plan(self, case: dict, retry: bool = False) -> None:
        """Put the case's next visit on the agenda, unless one for this state is pending."""
        case_id, status = case["_id"], case.get("status")
        if status not in OPEN_STATUSES:
            self._plans.pop(case_id, None)
            self._intended.pop(case_id, None)
            self._retries.pop(case_id, None)
            self._supervise_planned.discard(case_id)
            return
        flags = case.get("flags") or {}
        if flags.get("overdue") and not flags.get("supervised") and case_id not in self._supervise_planned:
            self._supervise_planned.add(case_id)
            if self.rng.random() < 0.5:
                self._push(self.now() + timedelta(seconds=self._pace(self.rng.uniform(120, 900))), SUPERVISE, case_id)
        plan = self._plans.get(case_id)
        if plan is not None and plan.status == status and not retry:
            return
        delay = self._delay(case) if not retry else self._pace(self.rng.uniform(60, 300))
        seq = self._push(self.now() + timedelta(seconds=delay), VISIT, case_id)
        self._plans[case_id] = Plan(seq, status)

    async def _replan(self, case_id: str, retry: bool = False) -> None:
        case = await self.ctx.cases.get(case_id)
        if case is not None:
            self._plan(case, retry=retry)

    def _pace(self, seconds: float) -> float:
        return max(5.0, seconds / self.speed)

    def _stage_delay(self, case: dict, field: str) -> float:
        """How long the actor takes, drawn against the stage's deadline."""
        deadline = (case.get("deadlines") or {}).get(field)
        now = self.now()
        if deadline is None:
            return self._pace(self.rng.uniform(600, 3600))
        if deadline.tzinfo is None:
            deadline = deadline.replace(tzinfo=timezone.utc)
        span = max(60.0, (deadline - now).total_seconds())
        roll = self.rng.random()
        if roll < self.late_share:
            # Late on purpose: real time, whatever the speed, so the deadline really passes.
            return span * self.rng.uniform(1.08, 1.6)
        if roll < self.late_share + 0.08:
            return max(20.0, span * self.rng.uniform(0.8, 0.97) / self.speed)  # in the warning zone
        # Most work takes hours, not the days a generous limit would allow.
        usual = min(span, STAGE_USUAL_SECONDS.get(field, span))
        return max(20.0, usual * self.rng.uniform(0.06, 0.6) / self.speed)

    def _delay(self, case: dict) -> float:
        status, flags, rng = case["status"], case.get("flags") or {}, self.rng
        if status == "reported":
            if case.get("source") == "hotline" and case.get("type") in ("consultation", "praise"):
                return self._pace(rng.uniform(40, 240))
            if flags.get("needs_location"):
                return self._pace(rng.uniform(120, 600))
            base = rng.lognormvariate(math.log(150 if case.get("source") == "grid" else 300), 0.6)
            return self._pace(min(base, 3600))
        if status == "filed":
            return self._pace(rng.uniform(30, 240))
        if status == "dispatched":
            return self._stage_delay(case, "sign_by")
        if status == "accepted":
            if flags.get("extension_pending"):
                return self._pace(rng.uniform(300, 1500))
            return self._stage_delay(case, "handle_by")
        if status == "handled":
            return self._stage_delay(case, "check_by")
        if status == "checked":
            return self._pace(rng.uniform(120, 900))
        if status == "suspended":
            return self._pace(rng.uniform(1800, 5400))
        return self._pace(600)

    # -- the actors ------------------------------------------------------------------------

    async def _act(self, user: User, case: dict, action: str, body: dict | None = None) -> dict:
        updated = await self.ctx.workflow.act(user, case["_id"], action, body or {})
        self.counts[action] += 1
        self._log(action, updated, user.username)
        return updated

    def _log(self, action: str, case: dict, detail: str) -> None:
        self.journal.append((self.now().isoformat(), action, case.get("number"), case.get("status"), detail))

    async def _visit(self, case_id: str) -> None:
        case = await self.ctx.cases.get(case_id)
        if case is None or case["status"] not in OPEN_STATUSES:
            return
        handler = getattr(self, f"_on_{case['status']}", None)
        if handler is not None:
            await handler(case)

    async def _on_reported(self, case: dict) -> None:
        cast, rng, flags = self.cast, self.rng, case.get("flags") or {}
        if case.get("source") == "hotline" and case.get("type") in ("consultation", "praise") and rng.random() < 0.85:
            text = ANSWERS.get(case["category"]["name"], "已向来电人答复，来电人表示满意。")
            await self._act(cast.operator, case, "answer", {"answer": text})
            return
        if flags.get("needs_location"):
            lng, lat = self._intended.pop(case["_id"], None) or self._place()[0]
            await self._act(cast.dispatcher, case, "relocate", {"location": {"type": "Point", "coordinates": [lng, lat]}})
            return
        if rng.random() < 0.03:
            await self._act(cast.dispatcher, case, "void", {"reason": rng.choice(VOID_REASONS)})
            return
        await self._act(cast.dispatcher, case, "file")

    async def _on_filed(self, case: dict) -> None:
        department = self._dispatch_target(case)
        body = {"department": department} if department else {}
        await self._act(self.cast.dispatcher, case, "dispatch", body)

    def _dispatch_target(self, case: dict) -> str | None:
        """The routed department; after a 退单 another one that serves the place."""
        routed = ((case.get("assignment") or {}).get("department")
                  or (case.get("routing") or {}).get("department") or {})
        returned = {r["department"]["id"] for r in case.get("returns") or [] if r.get("department")}
        if routed.get("id") and routed["id"] not in returned:
            return routed["id"]
        jurisdiction = case.get("jurisdiction") or {}
        router = self.ctx.router
        for level in ("street", "district"):
            node = jurisdiction.get(level)
            if not node:
                continue
            for kind in ("street_office", "urban_management", "district_government"):
                found = router.department_for(node["id"], kind)
                if found and found["id"] not in returned:
                    return found["id"]
        for department in self.ctx.city.departments.values():
            if department.jurisdiction == self.ctx.city.id and department.id not in returned:
                return department.id
        return None

    def _assigned(self, case: dict) -> User | None:
        department = ((case.get("assignment") or {}).get("department") or {}).get("id")
        if not department or department not in self.ctx.city.departments:
            return None
        return self.cast.department(department)

    async def _on_dispatched(self, case: dict) -> None:
        if (case.get("flags") or {}).get("return_pending"):
            await self._review_return(case)
            return
        user = self._assigned(case)
        if user is None:
            return
        counters = case.get("counters") or {}
        if not counters.get("returns") and self.rng.random() < 0.04:
            await self._act(user, case, "return", {"reason": self.rng.choice(RETURN_REASONS)})
            return
        await self._act(user, case, "sign")

    async def _review_return(self, case: dict) -> None:
        """派单异议: the dispatcher upholds most returns (改派) and sends some back."""
        if self.rng.random() < 0.75:
            await self._act(self.cast.dispatcher, case, "approve_return", {"note": "同意退单，另行派遣"})
        else:
            await self._act(self.cast.dispatcher, case, "reject_return", {"reason": "经核实属本部门职责，请继续办理"})

    async def _on_accepted(self, case: dict) -> None:
        flags, rng = case.get("flags") or {}, self.rng
        if flags.get("extension_pending"):
            if rng.random() < 0.8:
                await self._act(self.cast.dispatcher, case, "approve_extension", {"note": "同意延期，请按新时限办结"})
            else:
                await self._act(self.cast.dispatcher, case, "reject_extension", {"note": "问题影响较大，请按原时限办结"})
            return
        user = self._assigned(case)
        if user is None:
            return
        counters = case.get("counters") or {}
        if (not counters.get("extensions") and not case.get("extensions") and (case.get("clock") or {}).get("stage") == "handle"
                and rng.random() < 0.025):
            await self._act(user, case, "request_extension", {"duration": "1wd", "reason": rng.choice(EXTENSION_REASONS)})
            return
        if case.get("source") == "hotline":
            text = rng.choice(HOTLINE_FEEDBACK)
        else:
            group = (self.ctx.city.categories.get(case["category"]["code"]) or None)
            text = rng.choice(FEEDBACK_TEXTS.get(getattr(group, "group", None), HOTLINE_FEEDBACK))
        await self._act(user, case, "feedback", {"result": text})

    async def _on_handled(self, case: dict) -> None:
        rng = self.rng
        first = not (case.get("counters") or {}).get("reworks")
        if case.get("source") == "hotline":
            if rng.random() < 0.07:
                await self._act(self.cast.operator, case, "check", {"passed": True, "contacted": False,
                                                                     "note": "三次回访未接通，按办结处理"})
                return
            roll = rng.random()
            satisfaction = "satisfied" if roll < 0.78 else "basic" if roll < 0.92 else "unsatisfied"
            resolved = satisfaction != "unsatisfied" or rng.random() < 0.3
            passed = resolved or not first
            note = {"satisfied": "来电人表示满意", "basic": "来电人表示基本满意",
                    "unsatisfied": "来电人表示不满意，认为问题未解决"}[satisfaction]
            await self._act(self.cast.operator, case, "check", {"passed": passed, "contacted": True,
                                                                 "satisfaction": satisfaction, "resolved": resolved,
                                                                 "note": note})
            return
        scope_path = case.get("scope_path") or [self.ctx.city.id]
        worker = self.cast.grid_worker(scope_path)
        if first and rng.random() < 0.08:
            await self._act(worker, case, "check", {"passed": False, "note": rng.choice(REWORK_NOTES)})
            return
        await self._act(worker, case, "check", {"passed": True, "note": "现场核查已整改到位"})

    async def _on_checked(self, case: dict) -> None:
        await self._act(self.cast.dispatcher, case, "close")

    async def _on_suspended(self, case: dict) -> None:
        await self._act(self.cast.dispatcher, case, "resume")

    async def _supervise(self, case_id: str) -> None:
        case = await self.ctx.cases.get(case_id)
        if case is None or case["status"] not in OPEN_STATUSES:
            return
        flags = case.get("flags") or {}
        if not flags.get("overdue") or flags.get("supervised"):
            return
        await self._act(self.cast.commander, case, "supervise", {"note": self.rng.choice(SUPERVISE_NOTES)})


async def start_simulator(ctx) -> asyncio.Task:
    """`server.py --simulate`: warm up (before the deadline scheduler starts, so its sweep never
    sees a half-simulated past), then run live as a background task on the running loop."""
    simulator = Simulator.from_config(ctx)
    await simulator.prepare()
    return asyncio.get_running_loop().create_task(simulator.run(warm_up=False), name="simulator")


async def stop_simulator(task: asyncio.Task | None) -> None:
    """Cancel the task and wait for it to finish (at shutdown)."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
