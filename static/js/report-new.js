// 上报: category, location (GPS + pin), where it will go, description, photos, submit —
// or, without a network, keep it on the phone for the queue.
import { STATUS_NAMES, api, formatTime, toast } from "./api.js";
import { el } from "./dom.js";
import { currentDeadline, dispatchLabel, isNetworkError, newClientId, openSheet, shortName } from "./report-common.js";
import { openCaseDetail } from "./report-detail.js";
import { createLocationMap } from "./report-map.js";
import { createPhotoPicker } from "./report-photos.js";
import { debounce } from "./util.js";

const KIND_NAMES = { component: "部件", event: "事件" };
const RECENT_MAX = 6;

// The categories this worker picked last (per user, on this phone).
function recentCategories(username) {
  const key = `report.recentCategories.${username}`;
  const list = () => {
    try { return JSON.parse(localStorage.getItem(key) || "[]"); } catch { return []; }
  };
  const remember = (code) => {
    const codes = [code, ...list().filter((c) => c !== code)].slice(0, RECENT_MAX);
    try { localStorage.setItem(key, JSON.stringify(codes)); } catch { /* private mode */ }
  };
  return { list, remember };
}

function drawCategory(c) {
  const value = document.getElementById("category-value");
  value.className = c ? "picker-value" : "picker-placeholder";
  value.replaceChildren(...(c ? [
    el("span", { class: "picker-name" }, c.name),
    el("span", { class: "picker-meta" }, `${c.code} · ${c.group}${c.priority === "urgent" ? " · 紧急" : ""}`),
  ] : ["请选择问题类别"]));
}

// The sheet to choose a category from: search, recent ones first, grouped.
function openCategoryPicker({ choices, current, recent, onChoose }) {
  const search = el("input", { type: "search", id: "category-search", class: "sheet-search", placeholder: "搜索类别或常用说法，如“井盖”“违停”“路灯不亮”",
    autocomplete: "off", "aria-label": "搜索问题类别" });
  const list = el("div", { class: "category-list", id: "category-list" });
  const sheet = openSheet("选择问题类别", [el("div", { class: "sheet-search-bar" }, search), list]);
  const item = (c) => el("button", {
    type: "button", class: `category-item${current && current.code === c.code ? " selected" : ""}`,
    dataset: { code: c.code }, onclick: () => { onChoose(c); sheet.close(); },
  },
  el("span", { class: "category-name" }, c.name),
  el("span", { class: "category-meta" },
    c.priority === "urgent" ? el("span", { class: "tag tag-urgent" }, "紧急") : null,
    el("span", { class: "category-kind" }, KIND_NAMES[c.kind] || ""),
    el("span", { class: "category-code" }, c.code)));

  function render() {
    const q = search.value.trim().toLowerCase();
    // Everyday words too: `keywords` from categories.yaml (违停, 共享单车, 路灯不亮…); a keyword
    // matches when typed in part ("违停") or contained in what was typed ("门口有个坑").
    const said = (c) => (c.keywords || []).some((k) => k.toLowerCase().includes(q) || (k.length >= 1 && q.includes(k.toLowerCase())));
    const hits = choices.filter((c) => !q || c.name.toLowerCase().includes(q) || c.code.toLowerCase().includes(q) || (c.group || "").includes(q) || said(c));
    const groups = new Map();
    if (!q) {
      const recents = recent.map((code) => choices.find((c) => c.code === code)).filter(Boolean);
      if (recents.length) groups.set("最近使用", recents);
    }
    for (const c of hits) {
      if (!groups.has(c.group)) groups.set(c.group, []);
      groups.get(c.group).push(c);
    }
    if (!hits.length) {
      list.replaceChildren(el("div", { class: "empty" }, el("p", { class: "empty-title" }, `没有找到与“${search.value.trim()}”相关的类别`),
        el("p", { class: "muted" }, "可换个说法，或输入类别编码（如 B0101）")));
      return;
    }
    list.replaceChildren(...[...groups].map(([group, items]) => el("section", { class: "category-group" },
      el("h3", { class: "category-group-title" }, group, el("span", { class: "muted" }, ` ${items.length}`)),
      items.map(item))));
  }
  search.addEventListener("input", render);
  render();
  search.focus();
}

// What the routing preview says for `routeState` (idle, need-category, loading, outside,
// offline, error, ok).
function previewRows(me, routeState, route, message) {
  const rows = [];
  if (routeState === "need-category") {
    rows.push(el("p", { class: "preview-note" }, "选择问题类别后，这里会显示所在网格和将派往的部门。"));
  } else if (routeState === "loading") {
    rows.push(el("p", { class: "preview-note" }, el("span", { class: "spinner", "aria-hidden": "true" }), "正在判断所在网格和派往部门…"));
  } else if (routeState === "outside") {
    rows.push(el("p", { class: "preview-error", id: "outside-city" }, `${message || "该位置不在城市范围内"}，无法上报。请把图钉拖到${me.city.name}范围内。`));
  } else if (routeState === "offline") {
    rows.push(el("p", { class: "preview-note" }, "当前没有网络，暂时无法判断派往部门。可以照常提交，上报会先保存在手机上，联网后自动发送。"));
  } else if (routeState === "error") {
    rows.push(el("p", { class: "preview-error" }, message || "暂时无法判断派往部门，请稍后重试"));
  } else if (routeState === "ok" && route) {
    const j = route.jurisdiction || {};
    const short = (node, parent) => shortName(node, parent) || "—";
    const cell = (label, level, text, node) => el("div", { class: "preview-cell" }, el("span", { class: "preview-label" }, label),
      el("span", { class: "preview-value", id: `route-${level}`, dataset: { id: node ? node.id : "" }, title: node ? node.name : "" }, text));
    rows.push(el("div", { class: "preview-grid" },
      cell("网格", "grid", short(j.grid, j.community), j.grid), cell("社区", "community", short(j.community, null), j.community),
      cell("街道", "street", short(j.street, null), j.street)));
    rows.push(el("div", { class: "preview-dept", id: "route-department" },
      route.department ? ["将派往 ", el("strong", {}, route.department.name)] : el("strong", {}, "将由指挥中心人工派遣"),
      route.priority === "urgent" ? el("span", { class: "tag tag-urgent" }, "紧急") : null));
    // The rule's id is for administrators; the worker reads "按派遣规则".
    if (route.reason) rows.push(el("p", { class: "preview-reason" }, "依据：", route.reason));
    const ids = [j.district, j.street, j.community, j.grid].filter(Boolean).map((x) => x.id);
    if (me.user.scope !== me.city.id && !ids.includes(me.user.scope)) {
      rows.push(el("p", { class: "preview-warning" }, `该位置不在您的责任区（${me.scope_name}）内，请确认位置是否准确。`));
    }
  }
  return rows;
}

// Where the report will go (GET /api/route) for the pin, the category and the description;
// sets state.route / state.routeState and redraws the preview, then calls `onRendered`.
// Open cases of the same category within 150 m: the worker may find it already reported (as
// the hotline console shows its operator). A hint, never a block.
const NEAR_METRES = 150;
function createSimilar(me, state, box) {
  let seq = 0;
  async function check() {
    const mine = ++seq;
    const where = state.map && state.map.position();
    if (!where || !state.category || !navigator.onLine) { box.hidden = true; return; }
    try {
      const params = new URLSearchParams({ open: "true", near: `${where[0]},${where[1]},${NEAR_METRES}`, category: state.category.code, limit: "5" });
      const found = (await api.get(`/api/cases?${params}`)).items;
      if (mine !== seq) return;
      box.hidden = !found.length;
      box.replaceChildren(
        el("p", { class: "similar-title" }, `附近 ${NEAR_METRES} 米内已有 ${found.length} 件未办结的“${state.category.name}”案件，请确认是否为同一问题：`),
        el("ul", { class: "similar-list" }, found.map((c) => el("li", {},
          el("button", { type: "button", class: "link-button similar-item", dataset: { caseId: c.id }, onclick: () => openCaseDetail(c.id, me) },
            `${c.number} · ${STATUS_NAMES[c.status] || c.status} · 约 ${c.distance_m} 米`,
            c.description ? ` · ${c.description.slice(0, 24)}` : "")))),
        el("p", { class: "muted similar-note" }, "不是同一问题可照常提交。"));
    } catch {
      if (mine === seq) box.hidden = true;  // offline or refused: no hint
    }
  }
  return debounce(check, 500);
}

function createRouting(me, state, preview, description, onRendered) {
  const [w, s, e, n] = me.city.bounds;
  const inCityBox = ([lng, lat]) => lng >= w && lng <= e && lat >= s && lat <= n;
  let routeSeq = 0;

  function render(message) {
    preview.className = `route-preview route-${state.routeState}`;
    preview.replaceChildren(...previewRows(me, state.routeState, state.route, message));
    onRendered();
  }

  async function now() {
    const seq = ++routeSeq;
    const where = state.map && state.map.position();
    if (!where) { state.routeState = "idle"; return render(); }
    if (!inCityBox(where)) { state.routeState = "outside"; state.route = null; return render(`该位置不在${me.city.name}范围内`); }
    if (!state.category) { state.routeState = "need-category"; state.route = null; return render(); }
    state.routeState = "loading";
    render();
    const params = new URLSearchParams({ lng: where[0], lat: where[1], category: state.category.code, source: "grid", text: description.value.slice(0, 500) });
    try {
      const decision = await api.get(`/api/route?${params}`);
      if (seq !== routeSeq) return;
      state.route = decision;
      state.routeState = "ok";
      render();
    } catch (err) {
      if (seq !== routeSeq) return;
      state.route = null;
      state.routeState = err.code === "outside_city" ? "outside" : isNetworkError(err) ? "offline" : "error";
      render(err.message);
    }
  }
  return { now, soon: debounce(now, 350) };
}

// Why the report cannot be sent yet ("" when it can).
function blocker(state) {
  if (!state.category) return "请选择问题类别";
  if (!state.map.position()) return "请在地图上标出问题位置";
  // Without GPS the pin starts at the community centre: that is a guess, not a location.
  if (state.pinSource === "default" && !state.pinConfirmed) return "请拖动图钉到问题位置，或点“位置无误”确认";
  if (state.routeState === "outside") return "位置不在城市范围内，无法提交";
  if (state.photos.errors().length) return "有照片上传失败，请删除后再提交";
  return "";
}

// Send the report; without a network keep it in the queue. Returns "sent" with the case,
// "queued", or throws what to show under the button.
async function sendReport(state, { description, queue }) {
  const { category, route, photos, clientId } = state;
  const body = { category: category.code, description: description.value.trim(),
                 location: { type: "Point", coordinates: state.map.position() } };
  try {
    if (!navigator.onLine) throw Object.assign(new Error("offline"), { offline: true });
    await photos.settle();
    if (photos.errors().length) throw new Error("有照片上传失败，请删除后再提交");
    const all = photos.photos();
    if (all.some((p) => !p.id)) throw Object.assign(new Error("offline"), { offline: true });
    const created = await api.post("/api/reports", { ...body, photos: all.map((p) => p.id), client_id: clientId });
    return { sent: created };
  } catch (err) {
    if (!err.offline && !isNetworkError(err)) throw err;
    await queue.add({
      client_id: clientId, body, photos: photos.photos(),
      category_name: category.name,
      place: route ? [shortName(route.jurisdiction.community), shortName(route.jurisdiction.grid, route.jurisdiction.community)].filter(Boolean).join(" · ") : "",
      department: route && route.department ? route.department.name : "",
    });
    return { queued: true };
  }
}

// The screen after sending: the case's facts, or "saved, sent when online".
function createDoneScreens({ form, done, onReset, onShowMine }) {
  function show(kind, title, lines, extra) {
    done.replaceChildren(el("div", { class: `done-card card done-${kind}` },
      el("div", { class: "done-icon", "aria-hidden": "true" }),
      el("h2", { id: "done-title", tabindex: "-1" }, title),
      el("dl", { class: "done-facts" }, lines.filter(([, v]) => v).flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])),
      extra,
      el("div", { class: "done-actions" },
        el("button", { type: "button", class: "btn btn-large", id: "report-again", onclick: onReset }, "继续上报"),
        el("button", { type: "button", class: "btn btn-secondary btn-large", onclick: () => { onReset(); onShowMine(); } }, "查看我的上报"))));
    form.hidden = true;
    done.hidden = false;
    window.scrollTo(0, 0);
    done.querySelector("h2").focus();
  }

  function sent(c) {
    const dept = (c.assignment && c.assignment.department) || null;
    const due = currentDeadline(c);
    show("ok", "上报成功", [
      ["案件编号", el("span", { id: "done-number", class: "case-number" }, c.number)],
      ["问题类别", c.category.name],
      ["当前状态", STATUS_NAMES[c.status] || c.status],
      [dispatchLabel(c), dept ? dept.name : "待指挥中心派遣"],
      ["位置", c.place && c.place.text ? c.place.text : null],
      ["所在网格", c.jurisdiction && c.jurisdiction.grid ? c.jurisdiction.grid.name : null],
      [due ? `${due.stage}时限` : null, due ? formatTime(due.at) : null],
    ], null);
    toast(`上报成功，编号 ${c.number}`, "success");
  }

  function queued(category) {
    show("queued", "已保存，待网络恢复后自动发送", [
      ["问题类别", category.name],
      ["保存时间", formatTime(new Date().toISOString())],
    ], el("p", { class: "muted done-note" }, "当前没有网络。上报已保存在本机，联网后会自动发送，案件编号在发送成功后生成；可在“我的上报”中查看发送进度。"));
  }

  return { sent, queued };
}

export async function createNewReport({ me, categories, queue, onSubmitted, onShowMine }) {
  const $ = (id) => document.getElementById(id);
  const form = $("report-form"), done = $("report-done"), submit = $("submit-report"), hint = $("submit-hint");
  const description = $("description");
  const choices = categories.filter((c) => c.kind === "component" || c.kind === "event");
  const recent = recentCategories(me.user.username);
  const state = { category: null, route: null, routeState: "idle", clientId: newClientId(), submitting: false, map: null, photos: null,
                  pinSource: null, pinConfirmed: false };

  function updateSubmit() {
    if (state.submitting) return;
    const why = blocker(state);
    submit.disabled = Boolean(why);
    hint.textContent = why;
    hint.className = "submit-hint";
  }
  const similar = createSimilar(me, state, $("similar-nearby"));
  const routing = createRouting(me, state, $("route-preview"), description, () => { updateSubmit(); similar(); });

  function setCategory(c) {
    state.category = c;
    drawCategory(c);
    routing.soon.cancel();
    routing.now();
  }
  $("category-button").addEventListener("click", () => openCategoryPicker({
    choices, current: state.category, recent: recent.list(), onChoose: setCategory,
  }));

  const pinConfirm = $("pin-confirm");
  function pinMoved(how) {
    state.pinSource = how;
    if (how !== "default") state.pinConfirmed = false;
    pinConfirm.hidden = how !== "default" || state.pinConfirmed;
    updateSubmit();
  }
  $("pin-confirm-button").addEventListener("click", () => {
    state.pinConfirmed = true;
    pinConfirm.hidden = true;
    updateSubmit();
  });
  state.map = await createLocationMap($("report-map"), $("gps-status"), {
    me, onMove: (_where, how) => { pinMoved(how); if (state.map) routing.soon(); },
  });
  pinMoved(state.pinSource);
  $("locate-button").addEventListener("click", () => state.map.locate());
  description.addEventListener("input", () => {
    $("description-count").textContent = `${description.value.length}/2000`;
    if (state.category) routing.soon();
  });

  state.photos = createPhotoPicker({ inputId: "photo-input", onChange: () => updateSubmit() });
  $("photo-slot").append(state.photos.element);
  $("photo-count-slot").append(state.photos.count);

  function reset() {
    state.clientId = newClientId();
    description.value = "";
    $("description-count").textContent = "0/2000";
    state.photos.clear();
    setCategory(null);
    state.pinConfirmed = false;  // a confirmed guess holds for one report only
    pinMoved(state.pinSource);
    done.hidden = true;
    form.hidden = false;
    setTimeout(() => state.map.invalidate(), 0);
    $("category-button").focus();
  }
  const screens = createDoneScreens({ form, done, onReset: reset, onShowMine });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (state.submitting || blocker(state)) return;
    state.submitting = true;
    submit.disabled = true;
    submit.textContent = "正在提交…";
    hint.textContent = "";
    try {
      const outcome = await sendReport(state, { description, queue });
      recent.remember(state.category.code);
      if (outcome.sent) {
        screens.sent(outcome.sent);
        onSubmitted(outcome.sent);
        if (queue.pending.length) queue.flush();
      } else {
        queue.markOffline();
        screens.queued(state.category);
      }
    } catch (err) {
      hint.textContent = err.message;
      hint.className = "submit-hint submit-error";
    } finally {
      state.submitting = false;
      submit.textContent = "提交上报";
      updateSubmit();
    }
  });

  // First fix: GPS if the phone allows it.
  setCategory(null);
  state.map.locate({ auto: true });
  return { invalidate: () => state.map.invalidate() };
}
