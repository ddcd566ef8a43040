/* global L */
// 城运指挥中心: the live map of the user's scope, KPIs, the dispatch queue and the event ticker.
// The page never loads a scope's cases: the map asks the server for counts per area (and, close
// up, the open cases in view), the work lists for pages of their own cases; the live feed keeps
// what is on screen current.
import { api, toast } from "./api.js";
import { el, fill } from "./dom.js";
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
  OPEN, STATUS_FILTERS, STATUS_GROUPS, WINDOWS, describeChange, fromCase, fromFeature, isoDate, matches, standing, windowStart,
} from "./command-model.js";

const COMMAND_ROLES = ["dispatcher", "commander", "admin"];
const KPI_EVERY_MS = 30000;
const KPI_AFTER_EVENT_MS = 4000;
const KPI_MIN_GAP_MS = 15000;
// The work lists (待派遣, 超期, 临期): a page of each of the server's lists when the screen opens
// (200 rows of three lists kept a city's screen blank for 4-5 s), the next page of one when its
// reader asks for more (加载更多).
const LISTS = { queue: "status=reported,filed", overdue: "open=true&overdue=true", warning: "open=true&warning=true" };
const LIST_PAGE = 50;
// The status filter as the map asks for it (the map shows open cases only).
const MAP_STATUS = { open: {}, overdue: { overdue: "true" }, warning: { warning: "true" }, supervised: { supervised: "true" } };
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
    // The map shows open cases only: no 已结案 colour.
    ...STATUS_GROUPS.filter((g) => g.key !== "closed").map((g) => el("span", { class: "lg" }, el("i", { class: `lg-dot cm-${g.key}` }), g.name)),
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
    cases: new Map(),      // id → summary (the work lists' cases, kept current by the live feed)
    more: new Map(),       // the work lists that have more cases than the pages hold → the next page's cursor
    lastSeen: new Map(),   // id → summary as the live feed last reported it (for the ticker)
  };
  const open = (id, intent) => board.panel.open(id, intent);
  const onChanged = (c) => board.applyCase(fromCase(c));
  board.mapView = createMap($("map"), {
    me, onCaseClick: (id) => open(id),
    query: () => mapQuery(board),
    onView: (view) => updateCount(board, view),
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
    onOpen: open, onChanged, onClearFilters: () => board.clearFilters(), onMore: (key) => board.loadMore(key),
    startTab: me.user.role === "commander" ? "overdue" : "queue",
  });
  board.panel = createPanel({
    drawer: $("drawer"), body: $("drawer-body"), closeButton: $("drawer-close"), me, directory, map: board.mapView, onChanged,
  });
  Object.assign(board, rendering(board));
  return board;
}

// What the toolbar's category and department and the drill-down's area ask of the server.
function areaParams(board) {
  const params = new URLSearchParams();
  if (board.filters.category) params.set("category", board.filters.category);
  if (board.filters.department) params.set("department", board.filters.department);
  const here = board.trail[board.trail.length - 1];
  if (here) params.set(here.level, here.id);
  return params;
}

function mapQuery(board) {
  const params = areaParams(board);
  const status = board.filters.status;
  if (status) for (const [k, v] of Object.entries(MAP_STATUS[status] || { status })) params.set(k, v);
  const text = params.toString();
  return text ? `&${text}` : "";
}

// The box under the map says what the map shows: counts of open cases per area, or close up
// the open cases in view (newest first, capped by the server) and how many more there are.
function updateCount(board, view) {
  const { filters } = board;
  const filtered = filters.category || filters.status || filters.department;
  const box = $("map-count");
  $("map-loading").hidden = view.level !== "error";
  if (view.level === "error") {
    $("map-loading").textContent = `地图数据加载失败：${view.message}`;
    return;
  }
  const basis = el("span", { class: "map-count-basis" }, filtered ? "地图（按筛选）" : "地图", "：");
  const closedOnly = filters.status === "closed";
  const note = el("span", { class: "map-count-note" }, closedOnly ? "地图只显示在办案件" : "仅含有定位的在办案件，不限上报日期，与左侧统计期内的数字口径不同");
  if (view.level === "case") {
    fill(box, basis, "视野内在办 ", el("strong", {}, (view.shown + view.more).toLocaleString("zh-CN")), " 件",
      view.more ? el("span", { class: "map-count-more" }, `，显示最新 ${view.shown} 件，还有 ${view.more.toLocaleString("zh-CN")} 件（放大地图可逐一查看）`) : null,
      note);
    box.title = "放大到街巷时，地图逐一显示视野内的在办案件（最新的在前）；左侧统计按统计期内发生的上报、结案计数，包括未定位的案件。";
  } else {
    const unit = { district: "区", street: "街道", community: "社区" }[view.level] || "辖区";
    fill(box, basis, "在办 ", el("strong", {}, view.total.open.toLocaleString("zh-CN")), " 件",
      view.total.overdue ? el("span", { class: "map-count-overdue" }, "，其中超期 ", el("strong", {}, view.total.overdue.toLocaleString("zh-CN")), " 件") : null,
      el("span", { class: "map-count-window" }, ` · 按${unit}统计，放大到街巷可逐一查看`),
      note);
    box.title = "地图按辖区显示当前所有在办案件的数量，只包括有位置的案件；左侧统计按统计期内发生的上报、结案计数，包括未定位的案件。";
  }
}

function rendering(board) {
  const { cases, filters, mapView, queue } = board;
  // Inside the drilled-into area (cases carry their district's, street's and community's
  // names; every step is compared, as two streets may each have a 东坡路社区).
  const inArea = (s) => board.trail.every((step) => s[step.level] === step.name);
  const shown = (s) => matches(s, filters) && inArea(s);
  const visibleCases = () => [...cases.values()].filter(shown);

  function renderLists() {
    queue.render([...cases.values()], visibleCases(), board.more);
  }

  // The toolbar or the area changed: the map and the lists are asked again.
  function renderAll() {
    const filtered = filters.category || filters.status || filters.department;
    $("f-clear").hidden = !filtered;
    $("filter-note").hidden = !filtered;
    mapView.refresh();
    return board.loadLists().then(() => (board.ticker.count() ? null : prefillTicker(board)));
  }
  const renderListsSoon = debounce(renderLists, 250);

  // A case changed (live event or own action): update it in place everywhere. It stays in the
  // work lists while it belongs to one of them.
  function applyCase(s) {
    if (queue.belongs(s)) cases.set(s.id, s);
    else cases.delete(s.id);
    mapView.changed(s, OPEN.includes(s.status) && shown(s));
    renderListsSoon();
  }

  function clearFilters() {
    for (const id of ["f-category", "f-status", "f-department"]) $(id).value = "";
    Object.assign(filters, { category: "", status: "", department: "" });
    renderAll();
  }

  return { renderAll, renderLists, applyCase, clearFilters };
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
    if (step.level === "city") { board.mapView.fitBusy(); return; }
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

// The latest cases as they stand, so the ticker is not blank when the screen opens.
async function prefillTicker(board) {
  const recent = await api.get(`/api/cases?limit=12&${areaParams(board)}`).catch(() => ({ items: [] }));
  for (const c of recent.items.reverse()) {
    const s = fromCase(c);
    const line = standing(s);
    if (line) board.ticker.add(s, line);
  }
}

// `loadLists()`: the first page of each work list (待派遣, 超期, 临期) for the toolbar's filters
// and the area in view; `loadMore(key)`: the next page of one. The list API's items carry this
// user's `actions` for the rows' buttons.
function listLoader(board) {
  const { cases, lastSeen } = board;
  let request = 0;  // a page asked for before the filters or the area last changed is dropped
  const ask = (key, cursor) => {
    const params = areaParams(board).toString();
    return api.get(`/api/cases?${LISTS[key]}&limit=${LIST_PAGE}${params ? `&${params}` : ""}` +
                   (cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""));
  };
  const take = (key, answer) => {
    for (const c of answer.items) {
      const s = fromCase(c);
      cases.set(c.id, s);
      lastSeen.set(c.id, s);
    }
    if (answer.next) board.more.set(key, answer.next);
    else board.more.delete(key);
  };
  async function loadLists() {
    const mine = ++request;
    try {
      const answers = await Promise.all(Object.keys(LISTS).map((key) => ask(key).then((r) => [key, r])));
      if (mine !== request) return;
      cases.clear();
      board.more.clear();
      for (const [key, answer] of answers) take(key, answer);
      board.renderLists();
    } catch (err) {
      toast(`工作清单加载失败：${err.message}`, "error");
    }
  }
  async function loadMore(key) {
    const mine = request;
    const cursor = board.more.get(key);
    if (!cursor) return;
    try {
      const answer = await ask(key, cursor);
      if (mine !== request) return;
      take(key, answer);
    } catch (err) {
      toast(`加载更多失败：${err.message}`, "error");
    }
    board.renderLists();
  }
  return { loadLists, loadMore };
}

// The statistics: `refresh()` now, `afterEvents()` a few seconds after live events (never
// more often than every 15 s, so a busy hour does not hammer them), and every 30 s anyway;
// at the city's midnight "今日" moves on.
function kpiSchedule(board, area) {
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
  if (lastSeen.size > 5000) lastSeen.delete(lastSeen.keys().next().value);  // a wall screen runs for days
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
function wireControls(board, { kpis }) {
  const { filters } = board;
  for (const button of $("window-seg").querySelectorAll("button")) {
    button.addEventListener("click", async () => {
      if (filters.window === button.dataset.window) return;
      pressOnly($("window-seg"), button);
      filters.window = button.dataset.window;
      filters.since = windowStart(filters.window);
      await kpis.refresh();
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
  Object.assign(board, listLoader(board));
  let kpis = null;
  const area = drilling(board, { scopeLevel, refreshStats: () => kpis.refresh() });
  kpis = kpiSchedule(board, area);
  wireControls(board, { kpis });
  
  // A whole city is mostly countryside: open on the area where the cases are.
  const shown = board.mapView.ready({ busy: me.user.scope === me.city.id }).then(() => {
    labelCommunities(board.mapView.map, { minZoom: 14 });
  });
  connectLive({ onEvent: (event) => { onLiveEvent(board, event, kpis); if (returns) returns.refresh(); },
                onResync: () => { board.renderAll(); kpis.refresh(); }, onStatus: setLive });
  await Promise.all([shown, board.loadLists(), kpis.refresh(), prefillTicker(board)]);
    $("cmd").setAttribute("aria-busy", "false");
  document.body.dataset.ready = "1";
}

main().catch((err) => {
  toast(`页面加载失败：${err.message}`, "error");
  const box = document.getElementById("map-loading");
  if (box) box.textContent = `页面加载失败：${err.message}，请刷新重试`;
});
