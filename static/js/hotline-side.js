// The console's right-hand panel: 待回访 (hotline cases the department has handled: the
// operator calls the citizen back — the `check` action of a hotline case) and 我的工单 (my
// recent tickets, their status kept live over /ws/live).
import { api, formatTime, STATUS_NAMES, toast } from "./api.js";
import { el } from "./dom.js";
import { connectLive } from "./live.js";
import { countdownText, deadlineLevel, TYPE_NAMES } from "./case-detail.js";
import { segmented } from "./hotline-ui.js";
import { debounce } from "./util.js";

// `callbackTotal`: the server's count of cases waiting (the list itself is one page of them).
const state = { callbacks: new Map(), callbackTotal: null, mine: [], open: null, flash: new Set() };
let boxes = {}, onShow = () => {};

// -- 回访 ------------------------------------------------------------------------------------

async function loadCallbacks() {
  try {
    const data = await api.get("/api/cases?status=handled&source=hotline&limit=200&count=true");
    state.callbacks = new Map(data.items.map((c) => [c.id, c]));
    state.callbackTotal = data.next ? data.total : null;
    drawCallbacks();
  } catch (err) {
    boxes.callback.replaceChildren(el("div", { class: "empty empty-error" }, el("p", {}, "待回访列表加载失败：" + err.message),
      el("button", { class: "btn btn-secondary btn-small", type: "button", onclick: loadCallbacks }, "重试")));
  }
}

// Beyond one page a live change may concern a case not in the list: ask the server again.
const recount = debounce(async () => {
  try {
    const data = await api.get("/api/cases?status=handled&source=hotline&limit=1&count=true");
    state.callbackTotal = data.next ? data.total : null;
    drawCallbacks();
  } catch { /* the badge keeps its last count */ }
}, 1000);

function byCheckDeadline(a, b) {
  return String((a.deadlines || {}).check_by || "9").localeCompare(String((b.deadlines || {}).check_by || "9"));
}

function drawCallbacks() {
  const items = [...state.callbacks.values()].sort(byCheckDeadline);
  // Past one page the list shows the earliest-due 200; the badge keeps the server's total.
  boxes.callbackCount.textContent = String(state.callbackTotal === null ? items.length : Math.max(state.callbackTotal, items.length));
  if (!items.length) {
    boxes.callback.replaceChildren(el("p", { class: "empty" }, el("strong", {}, "暂无待回访工单"), "部门处置反馈后的热线工单会自动出现在这里"));
    return;
  }
  boxes.callback.replaceChildren(el("ul", { class: "cb-list", id: "callback-list" }, items.map(callbackItem)));
}

function callbackItem(c) {
  const now = Date.now();
  const level = deadlineLevel(c, now);
  const result = c.result || {};
  const open = state.open === c.id;
  return el("li", { class: "cb-item" + (open ? " open" : "") + (state.flash.has(c.id) ? " fresh" : ""), dataset: { id: c.id, number: c.number } },
    el("div", { class: "cb-top" },
      el("button", { class: "link cb-number", type: "button", onclick: () => onShow(c) }, c.number),
      el("span", { class: "muted small cb-kind" }, `${TYPE_NAMES[c.type] || ""} · ${(c.category || {}).name || ""}`),
      el("span", { class: `cb-countdown level-${level}`, dataset: { countdownFor: c.id } }, countdownText(c, now).replace("核查", "回访"))),
    el("div", { class: "cb-content" }, (c.description || "").slice(0, 90)),
    el("div", { class: "cb-result" },
      el("span", { class: "cb-dept" }, ((c.assignment || {}).department || {}).name || "处置部门"), "：",
      result.text || "（未填写处置结果）"),
    callerLine(c),
    open ? callbackForm(c) : el("button", { class: "btn btn-small cb-open", type: "button", onclick: () => { state.open = c.id; drawCallbacks(); focusForm(c.id); } }, "回访"));
}

// Another operator's ticket shows the caller masked (138****5678): the number is revealed on
// purpose for the callback, and the server records who asked and why.
function callerLine(c) {
  const caller = c.caller || {};
  const text = el("span", {}, [caller.name, caller.phone].filter(Boolean).join(" ") || "未留");
  const masked = /\*/.test(caller.phone || "");
  const reveal = masked ? el("button", { class: "link small", type: "button", onclick: async (event) => {
    event.target.disabled = true;
    try {
      const data = await api.post(`/api/cases/${encodeURIComponent(c.id)}/reveal`, { reason: "热线回访" });
      c.caller = data.caller;
      text.textContent = [data.caller.name, data.caller.phone].filter(Boolean).join(" ");
      event.target.remove();
    } catch (err) {
      toast(err.message, "error");
      event.target.disabled = false;
    }
  } }, "查看完整号码") : null;
  return el("div", { class: "cb-caller" }, "来电人 ", text, c.channel ? ` · ${c.channel}` : "", " ", reveal);
}

function focusForm(id) {
  const form = boxes.callback.querySelector(`li[data-id="${CSS.escape(id)}"] .cb-form`);
  if (form) form.querySelector(".seg").focus();
}

function callbackForm(c) {
  const form = el("form", { class: "cb-form", novalidate: true });
  const v = { contacted: true, satisfaction: null, resolved: null, passed: null, overridden: false };
  const conclusion = el("p", { class: "cb-conclusion", "aria-live": "polite" });
  const error = el("p", { class: "error-text", role: "alert" });

  const contactedBox = el("div"), satisfactionBox = el("div"), resolvedBox = el("div"), passedBox = el("div");
  const derive = () => {
    if (v.overridden) return;
    const auto = !v.contacted ? true : v.resolved === null || v.satisfaction === null ? null : v.resolved && v.satisfaction !== "unsatisfied";
    v.passed = auto;
    passed.set(auto === null ? null : auto ? "pass" : "fail");
  };
  const explain = () => {
    const why = !v.contacted ? "联系不上来电人" : v.passed === null ? "" : v.passed ? "已解决且未表示不满意" : "未解决或不满意";
    conclusion.textContent = v.passed === null ? "请先选择满意度和解决情况，系统自动给出核查结论（可修改）。"
      : `${v.passed ? "核查通过，案件转入待结案" : "核查不通过，退回部门重新办理"}${v.overridden ? "（人工确定）" : why ? `（依据：${why}）` : ""}`;
    conclusion.className = "cb-conclusion " + (v.passed === null ? "" : v.passed ? "pass" : "fail");
  };
  segmented(contactedBox, [["yes", "已接通"], ["no", "联系不上"]], {
    value: "yes", label: "联系情况",
    onChange: (value) => {
      v.contacted = value === "yes";
      satisfaction.setDisabled(!v.contacted);
      resolved.setDisabled(!v.contacted);
      derive(); explain();
    },
  });
  const satisfaction = segmented(satisfactionBox, [["satisfied", "满意"], ["basic", "基本满意"], ["unsatisfied", "不满意"]], {
    label: "满意度", onChange: (value) => { v.satisfaction = value; derive(); explain(); },
  });
  const resolved = segmented(resolvedBox, [["yes", "已解决"], ["no", "未解决"]], {
    label: "是否解决", onChange: (value) => { v.resolved = value === "yes"; derive(); explain(); },
  });
  const passed = segmented(passedBox, [["pass", "通过"], ["fail", "退回重办"]], {
    label: "核查结论",
    onChange: (value, fromUser) => { if (fromUser) { v.overridden = true; v.passed = value === "pass"; } explain(); },
  });
  const note = el("input", { class: "cb-note", name: "note", maxlength: 500, placeholder: "回访备注（选填），如来电人的原话" });
  const submit = el("button", { class: "btn btn-small", type: "submit" }, "提交回访");
  explain();

  form.append(
    el("div", { class: "cb-row" }, el("span", { class: "cb-label" }, "联系情况"), contactedBox),
    el("div", { class: "cb-row" }, el("span", { class: "cb-label" }, "满意度"), satisfactionBox),
    el("div", { class: "cb-row" }, el("span", { class: "cb-label" }, "是否解决"), resolvedBox),
    el("div", { class: "cb-row" }, el("span", { class: "cb-label" }, "核查结论"), passedBox),
    conclusion, note, error,
    el("div", { class: "cb-buttons" },
      el("button", { class: "btn btn-secondary btn-small", type: "button", onclick: () => { state.open = null; drawCallbacks(); } }, "取消"),
      submit));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    if (v.contacted && (v.satisfaction === null || v.resolved === null)) {
      error.textContent = "请选择满意度和是否解决";
      return;
    }
    if (v.passed === null) { error.textContent = "请确定核查结论"; return; }
    const body = { passed: v.passed, contacted: v.contacted, version: c.version };
    if (v.contacted) { body.satisfaction = v.satisfaction; body.resolved = v.resolved; }
    if (note.value.trim()) body.note = note.value.trim();
    submit.disabled = true;
    try {
      const updated = await api.action(c.id, "check", body);
      state.callbacks.delete(c.id);
      if (state.callbackTotal !== null) state.callbackTotal -= 1;
      state.open = null;
      drawCallbacks();
      updateMine(updated);
      toast(`${c.number} 回访已记录：${v.passed ? "核查通过" : "已退回部门重办"}`, "success");
    } catch (err) {
      error.textContent = err.message;
      if (err.status === 409) refreshCallback(c.id);
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

async function refreshCallback(id) {
  try {
    const c = await api.get(`/api/cases/${encodeURIComponent(id)}`);
    if (c.status === "handled" && c.source === "hotline") state.callbacks.set(c.id, c);
    else { state.callbacks.delete(c.id); if (state.open === c.id) state.open = null; }
    drawCallbacks();
  } catch { /* stays as it was */ }
}

// -- 我的工单 ---------------------------------------------------------------------------------

async function loadMine() {
  try {
    const data = await api.get("/api/cases?mine=true&limit=50");
    state.mine = data.items;
    drawMine();
  } catch (err) {
    boxes.mine.replaceChildren(el("div", { class: "empty empty-error" }, el("p", {}, "我的工单加载失败：" + err.message),
      el("button", { class: "btn btn-secondary btn-small", type: "button", onclick: loadMine }, "重试")));
  }
}

function drawMine() {
  boxes.mineCount.textContent = String(state.mine.length);
  if (!state.mine.length) {
    boxes.mine.replaceChildren(el("p", { class: "empty" }, el("strong", {}, "还没有登记工单"), "保存的工单会出现在这里，并实时显示办理进度"));
    return;
  }
  boxes.mine.replaceChildren(el("ul", { class: "mine-list", id: "mine-list" }, state.mine.map((c) => el("li", {
    class: "mine-item" + (state.flash.has(c.id) ? " fresh" : ""), dataset: { id: c.id, number: c.number, status: c.status },
  },
  el("div", { class: "mine-top" },
    el("button", { class: "link mine-number", type: "button", onclick: () => onShow(c) }, c.number),
    el("span", { class: `tag status status-${c.status}` }, STATUS_NAMES[c.status] || c.status)),
  el("div", { class: "mine-meta" }, `${formatTime(c.created_at)} · ${TYPE_NAMES[c.type] || ""} · ${(c.category || {}).name || ""}`),
  el("div", { class: "mine-summary" }, (c.summary || c.description || "").slice(0, 60)),
  ((c.assignment || {}).department) ? el("div", { class: "mine-dept muted small" }, "责任部门：" + c.assignment.department.name) : null))));
}

function flash(id) {
  state.flash.add(id);
  setTimeout(() => { state.flash.delete(id); }, 6000);
}

// A case (full document or live Feature properties) changed: update my list in place.
export function updateMine(c, { add = false } = {}) {
  const i = state.mine.findIndex((m) => m.id === c.id);
  if (i >= 0) state.mine[i] = { ...state.mine[i], ...c };
  else if (add) state.mine.unshift(c);
  else return;
  flash(c.id);
  drawMine();
}

function onLiveEvent(event) {
  const f = event.case;
  const p = { ...(f.properties || {}), id: f.id || (f.properties || {}).id };
  if (!p.id) return;
  const mine = state.mine.find((m) => m.id === p.id);
  if (mine && mine.status !== p.status) {
    updateMine({ id: p.id, status: p.status, assignment: p.assignment, flags: p.flags, deadlines: p.deadlines, version: p.version });
  }
  const waiting = state.callbacks.has(p.id);
  if (p.source === "hotline" && state.callbackTotal !== null) recount();
  if (p.source === "hotline" && p.status === "handled" && !waiting) {
    refreshCallback(p.id).then(() => {
      if (state.callbacks.has(p.id)) { flash(p.id); drawCallbacks(); toast(`工单 ${p.number} 已处置反馈，待回访`, "info"); }
    });
  } else if (waiting && p.status !== "handled") {
    state.callbacks.delete(p.id);
    if (state.open === p.id) state.open = null;
    drawCallbacks();
  }
}

function tick() {
  const now = Date.now();
  for (const node of boxes.callback.querySelectorAll("[data-countdown-for]")) {
    const c = state.callbacks.get(node.dataset.countdownFor);
    if (!c) continue;
    node.textContent = countdownText(c, now).replace("核查", "回访");
    node.className = `cb-countdown level-${deadlineLevel(c, now)}`;
  }
}

function tabs() {
  const pairs = [["tab-callback", boxes.callback], ["tab-mine", boxes.mine]];
  const select = (id) => {
    for (const [tabId, panel] of pairs) {
      const on = tabId === id;
      const tab = document.getElementById(tabId);
      tab.classList.toggle("active", on);
      tab.setAttribute("aria-selected", on ? "true" : "false");
      tab.tabIndex = on ? 0 : -1;
      panel.hidden = !on;
    }
  };
  for (const [tabId] of pairs) {
    const tab = document.getElementById(tabId);
    tab.addEventListener("click", () => select(tabId));
    tab.addEventListener("keydown", (event) => {
      if (event.key !== "ArrowLeft" && event.key !== "ArrowRight") return;
      event.preventDefault();
      const other = tabId === "tab-callback" ? "tab-mine" : "tab-callback";
      select(other);
      document.getElementById(other).focus();
    });
  }
}

export function mountSide({ showCase }) {
  boxes = {
    callback: document.getElementById("callback-panel"),
    mine: document.getElementById("mine-panel"),
    callbackCount: document.getElementById("callback-count"),
    mineCount: document.getElementById("mine-count"),
    live: document.getElementById("live-state"),
  };
  onShow = showCase;
  boxes.callback.replaceChildren(el("p", { class: "empty" }, "正在加载待回访工单…"));
  boxes.mine.replaceChildren(el("p", { class: "empty" }, "正在加载…"));
  tabs();
  loadCallbacks();
  loadMine();
  setInterval(tick, 1000);
  connectLive({
    onEvent: onLiveEvent,
    onResync: () => { loadCallbacks(); loadMine(); },
    onStatus: (status) => {
      boxes.live.textContent = status === "online" ? "实时" : "重连中…";
      boxes.live.className = "live-state " + status;
    },
  });
}
