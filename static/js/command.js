/* global L */
// 城运指挥中心: the live map of the user's scope, KPIs, the dispatch queue and the event ticker.
// Everything on screen is built from one set of case summaries kept current by the live feed.
import { api, toast } from "./api.js";
import { el } from "./dom.js";
import { clockText } from "./time.js";
import { fitSurely, jurisdictions, labelCommunities } from "./map.js";
import { debounce } from "./util.js";
import { mountHeader } from "./header.js";
import { connectLive } from "./live.js";
import { createMap } from "./command-map.js";
import { createKpis } from "./command-kpi.js";
import { createQueue } from "./command-queue.js";
import { createTicker } from "./command-ticker.js";
import { createPanel } from "./command-panel.js";
import { mountReturnQueue } from "./joint.js";
import { createAnalysis } from "./command-trend.js";
import {
  STATUS_FILTERS, STATUS_GROUPS, WINDOWS, describeChange, fromCase, fromFeature, isoDate, matches, windowStart,
} from "./command-model.js";

const COMMAND_ROLES = ["dispatcher", "commander", "admin"];
const KPI_EVERY_MS = 30000;
const KPI_AFTER_EVENT_MS = 4000;
const KPI_MIN_GAP_MS = 15000;
const $ = (id) => document.getElementById(id);

function startClock(header) {
  const node = el("span", { class: "hdr-clock", "aria-label": "当前时间" });
  const tick = () => { node.textContent = clockText(); };
  tick();
  setInterval(tick, 1000);
  const who = header.querySelector(".who") || header;
  who.prepend(node);
  who.prepend(document.getElementById("live"));
}

// Departments and the district each serves, for the selects and the 吹哨 list.
function buildDirectory(me, departments, districts, streets) {
  const nodes = new Map();
  for (const f of [...districts.features, ...streets.features]) nodes.set(f.properties.id, f.properties);
  const districtOf = (jid) => {
    let node = nodes.get(jid);
    while (node && node.level !== "district") node = nodes.get(node.parent);
    return node ? node.id : null;
  };
  return {
    cityId: me.city.id,
    departments,
    districtOf,
    districtName: (id) => (nodes.get(id) || {}).name || id,
    nameOf: (jid) => (nodes.get(jid) || {}).name || null,
    level: (jid) => (nodes.get(jid) || {}).level || (jid === me.city.id ? "city" : null),
  };
}

function fillFilters(categories, directory, serving) {
  const category = $("f-category");
  const groups = new Map();
  for (const c of categories) {
    const group = c.group || (c.kind === "hotline" ? "12345热线" : "其他");
    if (!groups.has(group)) groups.set(group, []);
    groups.get(group).push(c);
  }
  for (const [group, list] of groups) {
    category.append(el("optgroup", { label: group }, list.map((c) => el("option", { value: c.code }, c.name))));
  }
  $("f-status").replaceChildren(...STATUS_FILTERS.map(([value, label]) => el("option", { value }, label)));
  const byGroup = new Map();
  // A street or district commander's filter lists the departments serving that area only.
  const listed = serving ? directory.departments.filter((d) => serving.has(d.id)) : directory.departments;
  $("f-department").dataset.count = String(listed.length);
  for (const d of listed) {
    const districtId = directory.districtOf(d.jurisdiction);
    const group = districtId ? directory.districtName(districtId) : d.jurisdiction === directory.cityId ? "市级部门" : "其他";
    if (!byGroup.has(group)) byGroup.set(group, []);
    byGroup.get(group).push(d);
  }
  const order = [...byGroup.keys()].sort((a, b) => (a === "市级部门" ? -1 : b === "市级部门" ? 1 : a.localeCompare(b, "zh-CN")));
  for (const group of order) {
    $("f-department").append(el("optgroup", { label: group }, byGroup.get(group).map((d) => el("option", { value: d.id }, d.name))));
  }
}

// Heat mode: colour is density, not status, so the legend becomes the intensity scale (its
// colours are command-map.js's heat gradient; an overdue case weighs 1, any other 0.6).
function legend(box, mode = "points") {
  box.dataset.mode = mode;
  if (mode === "heat") {
    box.replaceChildren(
      el("span", { class: "lg lg-heat-title" }, "案件密度"),
      el("span", { class: "lg lg-heat" }, el("span", {}, "低"), el("i", { class: "lg-scale", "aria-hidden": "true" }), el("span", {}, "高")),
      el("span", { class: "lg lg-heat-note" }, "超期案件按 1 计，其余按 0.6 计"));
    box.setAttribute("aria-label", "图例：案件密度，从低（蓝）到高（红），超期案件权重更高");
    return;
  }
  box.setAttribute("aria-label", "图例");
  box.replaceChildren(
    ...STATUS_GROUPS.map((g) => el("span", { class: "lg" }, el("i", { class: `lg-dot cm-${g.key}` }), g.name)),
    el("span", { class: "lg" }, el("i", { class: "lg-dot lg-ring lv-warning" }), "临期"),
    el("span", { class: "lg" }, el("i", { class: "lg-dot lg-ring lv-overdue" }), "超期"));
}

// Other roles get a pointer to their own page; true when the screen is not theirs.
function denyOthers(me) {
  if (COMMAND_ROLES.includes(me.user.role)) return false;
  const home = { grid_worker: ["/report", "网格上报"], operator: ["/hotline", "热线受理台"], department: ["/dept", "部门工作台"] }[me.user.role];
  $("cmd").replaceChildren(el("div", { class: "panel cmd-denied" },
    el("h2", {}, "指挥中心大屏仅对派遣员、指挥长和系统管理员开放"),
    home ? el("p", {}, "您的工作页面是 ", el("a", { href: home[0] }, home[1]), "。") : null));
  $("cmd").setAttribute("aria-busy", "false");
  return true;
}

// Categories, departments and the jurisdiction directory; fills the filter bar and the legend.
async function loadDirectory(me) {
  const local = me.user.scope !== me.city.id;
  const [categories, departments, districts, streets, serving] = await Promise.all([
    api.get("/api/categories").then((r) => r.items),
    api.get("/api/departments").then((r) => r.items),
    jurisdictions("district"),
    jurisdictions("street"),
    local ? api.get("/api/stats/trend?days=1").then((r) => new Set(r.departments.map((d) => d.id))).catch(() => null) : null,
  ]);
  const directory = buildDirectory(me, departments, districts, streets);
  fillFilters(categories, directory, serving);
  legend($("map-legend"));
  return directory;
}

// The map, the statistics, the ticker, the work queue and the case drawer, and the cases they
// show. `board.applyCase(s)` updates one case everywhere; `board.renderAll()` redraws.
function createBoard(me, directory) {
  const board = {
    me, directory,
    filters: { window: "today", since: windowStart("today"), category: "", status: "", department: "" },
    // Drill-down (区 → 街道 → 社区): the trail from the user's own scope to the area in view.
    trail: [],
    cases: new Map(),      // id → summary (everything loaded or heard of)
    lastSeen: new Map(),   // id → summary as the live feed last reported it (for the ticker)
  };
  const open = (id, intent) => board.panel.open(id, intent);
  const onChanged = (c) => board.applyCase(fromCase(c));
  board.mapView = createMap($("map"), {
    me, onCaseClick: (id) => open(id),
    occludedRight: (rect) => {
      const drawer = $("drawer");
      if (drawer.hidden) return 0;
      return Math.max(0, rect.right - drawer.getBoundingClientRect().left);
    },
  });
  board.kpis = createKpis({
    countsBox: $("counts"), ratesBox: $("rates"), statusChartBox: $("status-chart"), groupChartBox: $("group-chart"),
    groupTitle: $("group-title"), periodLabel: $("kpi-period"),
    subs: { group: $("group-sub"), status: $("status-sub"), rates: $("rates-sub") },
    onGroupClick: (id, groupBy, name) => board.drill && board.drill(id, groupBy, name),
  });
  board.analysis = createAnalysis({
    tabsBox: $("analysis-tabs"), basis: $("status-sub"), trendBox: $("trend-chart"), topBox: $("top-types"),
    onShowStatus: () => board.kpis.resize(),
  });
  board.ticker = createTicker($("ticker"), { onOpen: (id) => open(id) });
  board.queue = createQueue({
    tabsBox: $("work-tabs"), listBox: $("work-list"), noteBox: $("work-note"), me, directory,
    onOpen: open, onChanged, onClearFilters: () => board.clearFilters(),
    startTab: me.user.role === "commander" ? "overdue" : "queue",
  });
  board.panel = createPanel({
    drawer: $("drawer"), body: $("drawer-body"), closeButton: $("drawer-close"), me, directory, map: board.mapView, onChanged,
  });
  Object.assign(board, rendering(board));
  return board;
}

function rendering(board) {
  const { cases, filters, mapView, queue } = board;
  // Inside the drilled-into area (cases carry their district's, street's and community's
  // names; every step is compared, as two streets may each have a 东坡路社区).
  const inArea = (s) => board.trail.every((step) => s[step.level] === step.name);
  const shown = (s) => matches(s, filters) && inArea(s);
  const visibleCases = () => [...cases.values()].filter(shown);

  // The map's figures are not the statistics' (those count every case reported in the
  // period, located or not): the box says what it counts, and why the two may differ.
  function updateCount(visible) {
    const onMap = visible.filter((s) => s.coords);
    const unlocated = visible.length - onMap.length;
    const closed = onMap.filter((s) => s.status === "closed").length;
    const filtered = filters.category || filters.status || filters.department;
    const box = $("map-count");
    box.replaceChildren(
      el("span", { class: "map-count-basis" }, filtered ? "地图（按筛选）" : "地图", "：在办 "),
      el("strong", {}, (onMap.length - closed).toLocaleString("zh-CN")), " 件",
      el("span", { class: "map-count-window" }, ` · ${WINDOWS[filters.window]}结案 `),
      el("strong", { class: "map-count-closed" }, closed.toLocaleString("zh-CN")), " 件",
      el("span", { class: "map-count-note" }, `仅含有定位的案件${unlocated ? `（另有 ${unlocated} 件待补充定位）` : ""}；在办不限上报日期，与左侧统计期内的数字口径不同`));
    box.title = "地图显示当前所有在办案件和统计期内结案的案件，只包括有位置的案件；左侧统计按统计期内发生的上报、结案计数，包括未定位的案件。";
  }

  function renderAll() {
    const visible = visibleCases();
    mapView.setCases(visible);
    queue.render([...cases.values()], visible);
    updateCount(visible);
    const filtered = filters.category || filters.status || filters.department;
    $("f-clear").hidden = !filtered;
    $("filter-note").hidden = !filtered;
  }
  const renderListsSoon = debounce(() => {
    const visible = visibleCases();
    queue.render([...cases.values()], visible);
    updateCount(visible);
  }, 250);

  // A case changed (live event or own action): update it in place everywhere.
  function applyCase(s) {
    cases.set(s.id, s);
    mapView.upsert(s, shown(s));
    renderListsSoon();
  }

  function clearFilters() {
    for (const id of ["f-category", "f-status", "f-department"]) $(id).value = "";
    Object.assign(filters, { category: "", status: "", department: "" });
    renderAll();
  }

  return { renderAll, applyCase, clearFilters };
}

// Drill-down (区 → 街道 → 社区): an area's bar (or the trail) sets the area in view; the map zooms
// to it and shows its cases, the statistics and the trend follow, the trail leads back up.
const NEXT_LEVEL = { city: "district", district: "street", street: "community", community: null };
// What the area chart breaks a level into: its areas one level down, a community its departments.
const GROUP_OF = { city: "district", district: "street", street: "community", community: "department" };
function drilling(board, { scopeLevel, refreshStats }) {
  const { directory, me } = board;
  const home = { id: me.user.scope, name: me.scope_name || me.city.name, level: scopeLevel };

  function drawTrail() {
    const nav = $("drill-trail");
    const steps = [home, ...board.trail];
    const parts = [];
    steps.forEach((step, i) => {
      if (i) parts.push(el("span", { class: "drill-sep", "aria-hidden": "true" }, "›"));
      parts.push(i === steps.length - 1
        ? el("span", { class: "drill-here", "aria-current": "page" }, step.name)
        : el("button", { type: "button", onclick: () => goTo(i) }, step.name));
    });
    if (NEXT_LEVEL[steps[steps.length - 1].level]) parts.push(el("span", { class: "drill-hint" }, "点击左下图表中的区域可逐级查看"));
    nav.replaceChildren("统计范围：", ...parts);
    $("cmd").dataset.scope = steps[steps.length - 1].id;
  }

  async function zoom(step) {
    const map = board.mapView.map;
    if (step.level === "city") { board.mapView.fitCases(); return; }
    try {
      // Communities are many: only the street's own are fetched.
      const data = await jurisdictions(step.level, step.within ? { within: step.within } : {});
      const feature = data.features.filter((f) => f.properties.id === step.id);
      if (feature.length) fitSurely(map, L.geoJSON({ type: "FeatureCollection", features: feature }).getBounds(), { padding: [16, 16] });
    } catch { /* the statistics still follow */ }
  }

  async function show() {
    drawTrail();
    board.renderAll();
    zoom(board.trail[board.trail.length - 1] || home);
    await refreshStats();
  }

  function goTo(index) {
    board.trail = board.trail.slice(0, index);
    show();
  }

  // A bar of the area chart: one level down (districts → streets → communities; a community's
  // bars are departments). The chart says what its bars are (`groupBy`) and names them.
  board.drill = (id, groupBy, name) => {
    const here = board.trail[board.trail.length - 1] || home;
    const level = NEXT_LEVEL[here.level];
    if (!level || groupBy !== level) return;
    board.trail = [...board.trail, { id, name: name || directory.nameOf(id) || id, level, within: here.id }];
    show();
  };
  drawTrail();
  return {
    scope: () => (board.trail[board.trail.length - 1] || home),
    groupBy: () => GROUP_OF[(board.trail[board.trail.length - 1] || home).level] || "department",
  };
}

// Recent changes already on record, so the ticker is not blank when the screen opens.
function prefillTicker(board) {
  const recent = [...board.cases.values()].filter((s) => s.updated_at)
    .sort((a, b) => String(a.updated_at).localeCompare(String(b.updated_at))).slice(-12);
  for (const s of recent) {
    const text = { reported: "待立案", filed: "已立案，待派遣", dispatched: "已派遣", accepted: "处置中", handled: "已反馈，待核查",
                   checked: "核查通过，待结案", closed: "已结案", suspended: "已挂账" }[s.status];
    if (!text) continue;
    const dept = s.assignment && s.assignment.department ? s.assignment.department.name : null;
    const kind = s.flags.overdue ? "overdue" : s.status === "closed" ? "done" : "move";
    board.ticker.add(s, { text: (s.flags.overdue ? "超期 · " : "") + text + (dept && s.status !== "closed" ? ` → ${dept}` : ""), kind });
  }
}

// `loadCases()`: every open case, the recently closed ones and those waiting for a location.
function caseLoader(board) {
  const { cases, lastSeen, filters, me } = board;
  let firstLoad = true;
  return async function loadCases() {
    // Finished cases are filtered by when they were closed (client side); the query goes by
    // registration date, so it reaches a week further back.
    const closedFrom = isoDate(new Date(filters.since.getTime() - 7 * 86400000));
    $("map-loading").hidden = false;
    $("map-loading").textContent = "正在加载案件…";
    try {
      const [open, closed, queued] = await Promise.all([
        api.get("/api/cases.geojson?open=true&limit=10000"),
        api.get(`/api/cases.geojson?status=closed&from=${closedFrom}&limit=10000`),
        // Cases waiting for a location have no point: the queue needs them from the list API.
        api.get("/api/cases?status=reported,filed&limit=500"),
      ]);
      cases.clear();
      lastSeen.clear();
      for (const f of [...open.features, ...closed.features]) cases.set(f.properties.id, fromFeature(f));
      // The queue's own rows come from the list API: they carry this user's `actions`.
      for (const c of queued.items) cases.set(c.id, fromCase(c));
      for (const [id, s] of cases) lastSeen.set(id, s);
      board.renderAll();
      $("map-loading").hidden = true;
      if (!board.ticker.count()) prefillTicker(board);
      // A whole city is mostly countryside: open on the area where the cases are.
      if (firstLoad && me.user.scope === me.city.id) board.mapView.fitCases();
      firstLoad = false;
    } catch (err) {
      $("map-loading").textContent = `案件加载失败：${err.message}`;
    }
  };
}

// The statistics: `refresh()` now, `afterEvents()` a few seconds after live events (never
// more often than every 15 s, so a busy hour does not hammer them), and every 30 s anyway;
// at the city's midnight "今日" moves on (`onNewDay`).
function kpiSchedule(board, area, onNewDay) {
  const { filters, kpis } = board;
  let lastKpi = 0, kpiTimer = null;
  async function refresh() {
    lastKpi = Date.now();
    const scope = area.scope();
    const scopeParam = scope.id === board.me.user.scope ? undefined : scope.id;
    await Promise.all([
      kpis.refresh({ since: isoDate(filters.since), until: isoDate(new Date()), groupBy: area.groupBy(), periodText: WINDOWS[filters.window], scope: scopeParam }),
      board.analysis.refresh({ scope: scopeParam, scopeName: scope.name, category: filters.category, department: filters.department,
                               filterText: filterText(board) }),
    ]);
    $("cmd").dataset.kpiAt = String(Date.now());
  }
  function afterEvents() {
    if (kpiTimer) return;
    const wait = Math.max(KPI_AFTER_EVENT_MS, KPI_MIN_GAP_MS - (Date.now() - lastKpi));
    kpiTimer = setTimeout(() => { kpiTimer = null; refresh(); }, wait);
  }
  setInterval(() => {
    // A wall screen runs for days: at midnight "今日" moves on.
    const since = windowStart(filters.window);
    if (since.getTime() !== filters.since.getTime()) {
      filters.since = since;
      onNewDay();
      refresh();
    } else if (Date.now() - lastKpi >= KPI_EVERY_MS - 500) {
      refresh();
    }
  }, 5000);
  return { refresh, afterEvents };
}

// The filters in words, for the panels that follow them.
function filterText(board) {
  const parts = [];
  for (const [id, key] of [["f-category", "category"], ["f-department", "department"]]) {
    if (!board.filters[key]) continue;
    const select = $(id);
    parts.push(select.options[select.selectedIndex].textContent);
  }
  return parts.length ? `按筛选：${parts.join("、")}` : "";
}

// One live event: the case everywhere, a ticker line and a pulse when it matters.
function onLiveEvent(board, event, kpis) {
  const { filters, lastSeen, mapView } = board;
  const s = fromFeature(event.case);
  const before = lastSeen.get(s.id) || null;
  lastSeen.set(s.id, s);
  const change = describeChange(event.type, s, before);
  board.applyCase(s);
  if (change && matches(s, { ...filters, status: "" }) && s.status !== "void" && s.status !== "merged") {
    board.ticker.add(s, change);
    if (event.type === "case.created") mapView.pulse(s, "new");
    else if (change.kind === "overdue") mapView.pulse(s, "overdue");
  }
  board.panel.changed(s.id);
  kpis.afterEvents();
}

function setLive(state) {
  const box = $("live");
  box.dataset.state = state;
  box.querySelector("span").textContent = state === "online" ? "实时连接正常" : "重连中…";
  box.title = state === "online" ? "案件变化将实时推送到本页面" : "与服务器的实时连接已断开，正在自动重连";
}

function pressOnly(group, button) {
  for (const b of group.querySelectorAll("button")) b.setAttribute("aria-pressed", b === button ? "true" : "false");
}

// The time window, the filters and the map layer switch.
function wireControls(board, { loadCases, kpis }) {
  const { filters } = board;
  for (const button of $("window-seg").querySelectorAll("button")) {
    button.addEventListener("click", async () => {
      if (filters.window === button.dataset.window) return;
      pressOnly($("window-seg"), button);
      filters.window = button.dataset.window;
      filters.since = windowStart(filters.window);
      await Promise.all([loadCases(), kpis.refresh()]);
    });
  }
  for (const [id, key] of [["f-category", "category"], ["f-status", "status"], ["f-department", "department"]]) {
    $(id).addEventListener("change", (e) => { filters[key] = e.target.value; board.renderAll(); kpis.refresh(); });
  }
  $("f-clear").addEventListener("click", () => { board.clearFilters(); kpis.refresh(); });
  for (const button of $("layer-seg").querySelectorAll("button")) {
    button.addEventListener("click", () => {
      pressOnly($("layer-seg"), button);
      board.mapView.setMode(button.dataset.layer);
      legend($("map-legend"), button.dataset.layer);
    });
  }
  window.addEventListener("resize", debounce(() => { board.kpis.resize(); board.analysis.resize(); board.mapView.invalidate(); }, 150));
}

async function main() {
  const me = await mountHeader("城运指挥中心");
  if (me.user.scope !== me.city.id) {
    // A district's or street's commander: the title names the area the screen covers.
    const title = document.querySelector("header.app-header .brand span:last-child");
    if (title) title.textContent = `${me.city.name}${me.scope_name} · 城运指挥中心`;
  }
  startClock(document.querySelector("header.app-header"));
  if (denyOthers(me)) return;
  document.body.dataset.role = me.user.role;

  const directory = await loadDirectory(me);
  const scopeLevel = me.user.scope === me.city.id ? "city" : directory.level(me.user.scope);

  const board = createBoard(me, directory);
  // 退单待审: the dispatcher's review of returns (approve → 改派, reject → back to the department).
  const returns = me.user.role === "dispatcher" ? mountReturnQueue(document.querySelector(".cmd-right"), { onOpen: (id) => board.panel.open(id) }) : null;
  const loadCases = caseLoader(board);
  let kpis = null;
  const area = drilling(board, { scopeLevel, refreshStats: () => kpis.refresh() });
  kpis = kpiSchedule(board, area, loadCases);
  wireControls(board, { loadCases, kpis });

  await board.mapView.ready();
  labelCommunities(board.mapView.map, { minZoom: 14 });
  connectLive({ onEvent: (event) => { onLiveEvent(board, event, kpis); if (returns) returns.refresh(); }, onResync: () => { loadCases(); kpis.refresh(); }, onStatus: setLive });
  await Promise.all([loadCases(), kpis.refresh()]);
  $("cmd").setAttribute("aria-busy", "false");
  document.body.dataset.ready = "1";
}

main().catch((err) => {
  toast(`页面加载失败：${err.message}`, "error");
  const box = document.getElementById("map-loading");
  if (box) box.textContent = `页面加载失败：${err.message}，请刷新重试`;
});
