// 部门工作台: the department's queue (cases assigned to it, live), the case detail, and the
// actions of the closed loop a department takes: 签收, 处置反馈, 退单, 申请延期, 报到.
import { api, STATUS_NAMES, toast } from "./api.js";
import { el, fill } from "./dom.js";
import { mountHeader } from "./header.js";
import { connectLive } from "./live.js";
import { countdownText, deadlineLevel, renderCaseDetail, stageDeadline } from "./case-detail.js";
import { availableActions, DONE_MESSAGES, runAction } from "./dept-actions.js";
import { callerReveal } from "./caller-reveal.js";
import { isSupporting, jointBadges, jointPanel, myPart } from "./joint.js";

const TABS = [
  { id: "all", label: "全部", match: () => true },
  { id: "dispatched", label: "待签收", match: (c) => c.status === "dispatched" },
  { id: "accepted", label: "处置中", match: (c) => c.status === "accepted" },
  { id: "handled", label: "待核查", match: (c) => c.status === "handled" },
  { id: "suspended", label: "挂账", match: (c) => c.status === "suspended" },
  { id: "summoned", label: "待报到", match: (c) => isSummoned(c), optional: true },
];
const EMPTY_TEXT = {
  all: "暂无待办案件。新派遣给本部门的案件会自动出现在这里。",
  dispatched: "暂无待签收案件",
  accepted: "暂无处置中的案件",
  handled: "暂无待核查案件（处置反馈后的案件在此等待核查）",
  suspended: "暂无挂账案件",
  summoned: "暂无吹哨待报到案件",
};
const QUEUE_STATUSES = ["dispatched", "accepted", "handled", "suspended"];
// What each state means to the department itself.
const QUEUE_STATUS_NAMES = { dispatched: "待签收", accepted: "处置中", handled: "待核查", suspended: "挂账" };
const LEVEL_RANK = { overdue: 0, warning: 1, ok: 2, none: 3 };

const state = {
  me: null,
  cases: new Map(),     // id → full case document
  fresh: new Set(),     // ids that just arrived: highlighted for a while
  tab: "all",
  selected: null,
  detail: null,         // {destroy, tick} of the rendered detail
  levels: new Map(),    // id → last drawn deadline level (re-sort when one changes)
  search: "",           // the queue's search words
};

const listBox = document.getElementById("queue-list");
const tabsBox = document.getElementById("tabs");
const detailBox = document.getElementById("detail");
const summaryBox = document.getElementById("queue-summary");
const liveState = document.getElementById("live-state");

function myDepartment() { return state.me.user.department; }

function isAssigned(c) {
  const d = (c.assignment || {}).department;
  return !!d && d.id === myDepartment();
}

function isSummoned(c) {
  return (c.summons || []).some((s) => s.department && s.department.id === myDepartment() && !s.checked_in_at);
}

function inQueue(c) {
  return (isAssigned(c) && QUEUE_STATUSES.includes(c.status)) || (isSummoned(c) && !["closed", "void", "merged"].includes(c.status))
    || isSupporting(c, myDepartment());
}

// Overdue first, then warning, then the nearest deadline; urgent first when those tie.
function compareCases(a, b, now) {
  const la = LEVEL_RANK[deadlineLevel(a, now)], lb = LEVEL_RANK[deadlineLevel(b, now)];
  if (la !== lb) return la - lb;
  const da = stageDeadline(a), db = stageDeadline(b);
  const ta = da ? Math.floor(da.at / 60000) : Infinity, tb = db ? Math.floor(db.at / 60000) : Infinity;
  if (ta !== tb) return ta < tb ? -1 : 1;
  const ua = a.priority === "urgent" ? 0 : 1, ub = b.priority === "urgent" ? 0 : 1;
  if (ua !== ub) return ua - ub;
  return String(b.created_at).localeCompare(String(a.created_at));
}

// -- loading ---------------------------------------------------------------------------------

async function loadQueue() {
  listBox.setAttribute("aria-busy", "true");
  try {
    const items = [];
    let cursor = null;
    do {
      const page = await api.get("/api/cases?open=true&limit=200" + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""));
      items.push(...page.items);
      cursor = page.next;
    } while (cursor && items.length < 2000);
    state.cases = new Map(items.filter(inQueue).map((c) => [c.id, c]));
    renderQueue();
    if (state.selected && state.cases.has(state.selected)) renderDetail();
  } catch (err) {
    listBox.replaceChildren(el("div", { class: "empty empty-error" },
      el("p", {}, "待办列表加载失败：" + err.message),
      el("button", { class: "btn btn-secondary", type: "button", onclick: loadQueue }, "重试")));
  } finally {
    listBox.setAttribute("aria-busy", "false");
  }
}

async function refreshCase(id, { announce = false } = {}) {
  let doc;
  try {
    doc = await api.get(`/api/cases/${encodeURIComponent(id)}`);
  } catch (err) {
    if (err.status === 404) { removeCase(id); return; }
    throw err;
  }
  upsertCase(doc, { announce });
}

function upsertCase(doc, { announce = false } = {}) {
  const known = state.cases.has(doc.id);
  if (inQueue(doc)) {
    state.cases.set(doc.id, doc);
    if (!known && announce) {
      state.fresh.add(doc.id);
      setTimeout(() => { state.fresh.delete(doc.id); renderQueue(); }, 8000);
      const what = doc.status === "dispatched" ? "新派遣案件" : isSummoned(doc) ? "吹哨召集" : "新案件";
      toast(`${what} ${doc.number}：${(doc.category || {}).name || ""}`, "info");
    }
  } else {
    state.cases.delete(doc.id);
    if (state.selected === doc.id) {
      // Keep showing it (e.g. just returned or handed over) so the user sees what happened.
      state.detailDoc = doc;
    }
  }
  const sameVersion = state.shown && state.shown.id === doc.id && state.shown.version === doc.version;
  renderQueue();
  if (state.selected === doc.id && !sameVersion) renderDetail(doc);
}

function removeCase(id) {
  state.cases.delete(id);
  renderQueue();
  if (state.selected === id) {
    state.selected = null;
    showEmptyDetail("该案件已不在本部门的办理范围内。");
  }
}

// -- the queue -------------------------------------------------------------------------------

function renderTabs(cases) {
  const counts = Object.fromEntries(TABS.map((t) => [t.id, cases.filter(t.match).length]));
  if (state.tab === "summoned" && !counts.summoned) state.tab = "all";
  const tabs = TABS.filter((t) => !t.optional || counts[t.id]);
  tabsBox.replaceChildren(...tabs.map((t) => el("button", {
    class: "tab" + (t.id === state.tab ? " active" : ""), type: "button", role: "tab", id: "tab-" + t.id,
    "aria-selected": t.id === state.tab ? "true" : "false", tabindex: t.id === state.tab ? "0" : "-1",
    dataset: { tab: t.id },
    onclick: () => { state.tab = t.id; renderQueue(); document.getElementById("tab-" + t.id).focus(); },
    onkeydown: (event) => tabKeys(event, tabs, t.id),
  }, t.label, el("span", { class: "tab-count" + (counts[t.id] ? "" : " zero") }, String(counts[t.id])))));
}

function tabKeys(event, tabs, id) {
  const i = tabs.findIndex((t) => t.id === id);
  const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
  if (!step) return;
  event.preventDefault();
  const next = tabs[(i + step + tabs.length) % tabs.length];
  state.tab = next.id;
  renderQueue();
  document.getElementById("tab-" + next.id).focus();
}

function renderSummary(cases, now) {
  const overdue = cases.filter((c) => deadlineLevel(c, now) === "overdue").length;
  const warning = cases.filter((c) => deadlineLevel(c, now) === "warning").length;
  const toSign = cases.filter((c) => c.status === "dispatched").length;
  summaryBox.replaceChildren(
    el("span", { class: "sum-item" }, "在办 ", el("b", {}, String(cases.length))),
    el("span", { class: "sum-item" }, "待签收 ", el("b", {}, String(toSign))),
    el("span", { class: "sum-item sum-warning" + (warning ? " on" : "") }, "临期 ", el("b", {}, String(warning))),
    el("span", { class: "sum-item sum-overdue" + (overdue ? " on" : "") }, "超期 ", el("b", {}, String(overdue))),
  );
}

// A 督办 of a case waiting for its check is addressed to the checker, not to us
// (`supervisions[].to`, dispatch/workflow/escalation.py).
function supervisedHere(c) {
  if (!(c.flags || {}).supervised) return false;
  const last = (c.supervisions || [])[(c.supervisions || []).length - 1];
  return !last || !last.to || last.to.kind === "department";
}

// A hotline ticket filed under its bare type (投诉, 咨询…) is titled by what it is about: the
// first words of the content, with the type as a tag.
const GENERIC = new Set(["投诉", "咨询", "求助", "建议", "举报", "表扬"]);
function caseTitle(c) {
  const name = (c.category || {}).name || "未分类";
  const text = (c.description || "").replace(/\s+/g, " ").trim();
  if (c.source === "hotline" && GENERIC.has(name) && text) {
    const summary = text.split(/[，。；！？,.;!?]/)[0].slice(0, 24);
    return [el("span", { class: "tag tag-type" }, `12345 ${name}`), " ", summary,
            text.length > summary.length ? el("span", { class: "q-summary" }, text.slice(summary.length).replace(/^[，。；！？,.;!?\s]+/, "")) : null];
  }
  return [name, text ? el("span", { class: "q-summary" }, text) : null];
}

function queueItem(c, now) {
  const level = deadlineLevel(c, now);
  state.levels.set(c.id, level);
  const j = c.jurisdiction || {};
  // The operator's address if typed, else the server's reverse-geocoded door plate.
  const plate = c.place && c.place.door_plate ? (c.place.text || "").split(" · ")[0] : null;
  const place = [c.address || plate, j.community && j.community.name].filter(Boolean).join(" · ") || "未定位";
  const flags = c.flags || {};
  return el("button", {
    class: `q-item level-border-${level}` + (c.id === state.selected ? " selected" : "") + (state.fresh.has(c.id) ? " fresh" : ""),
    type: "button", role: "listitem", dataset: { id: c.id, number: c.number },
    "aria-current": c.id === state.selected ? "true" : null,
    onclick: () => select(c.id),
  },
  el("div", { class: "q-top" },
    el("span", { class: "q-number" }, c.number),
    el("span", { class: `tag status status-${c.status}` }, QUEUE_STATUS_NAMES[c.status] || STATUS_NAMES[c.status] || c.status),
    c.priority === "urgent" ? el("span", { class: "tag tag-urgent" }, "紧急") : null,
    supervisedHere(c) ? el("span", { class: "tag flag-supervised" }, "督办") : null,
    flags.extension_pending ? el("span", { class: "tag flag-extension" }, "延期申请中") : null,
    isSummoned(c) ? el("span", { class: "tag flag-summons" }, "待报到") : null,
    ...jointBadges(c, myDepartment())),
  el("div", { class: "q-category" }, ...caseTitle(c)),
  el("div", { class: "q-place" }, place),
  el("div", { class: "q-bottom" },
    el("span", { class: `q-countdown level-${level}`, dataset: { countdownFor: c.id } }, countdownText(c, now) || "—")));
}

function renderQueue() {
  const now = Date.now();
  const all = [...state.cases.values()];
  renderTabs(all);
  renderSummary(all, now);
  const tab = TABS.find((t) => t.id === state.tab) || TABS[0];
  const shown = all.filter(tab.match).filter(matchesSearch).sort((a, b) => compareCases(a, b, now));
  state.levels.clear();
  // 批量签收: every case in view that may be signed now (the server lists `sign` in its actions).
  const signable = shown.filter((c) => (c.actions || []).some((a) => a.name === "sign"));
  batchButton.hidden = signable.length < 2;
  batchButton.textContent = `批量签收（${signable.length}）`;
  if (!shown.length) {
    listBox.replaceChildren(el("p", { class: "empty" }, state.search ? `没有与“${state.search}”相符的待办案件` : EMPTY_TEXT[tab.id]));
    return;
  }
  listBox.replaceChildren(...shown.map((c) => queueItem(c, now)));
}

// -- search and 批量签收 -------------------------------------------------------------------------

const searchBox = document.getElementById("queue-search");
const batchButton = document.getElementById("batch-sign");

function matchesSearch(c) {
  const q = state.search;
  if (!q) return true;
  const j = c.jurisdiction || {};
  const text = [c.number, (c.category || {}).name, c.description, c.address, c.place && c.place.text,
                j.street && j.street.name, j.community && j.community.name].filter(Boolean).join(" ").toLowerCase();
  return q.toLowerCase().split(/\s+/).every((word) => text.includes(word));
}

searchBox.addEventListener("input", () => { state.search = searchBox.value.trim(); renderQueue(); });

// Signs the cases in view one by one (each with its own version); a failure leaves that case
// as it was and is reported, the others go on.
batchButton.addEventListener("click", async () => {
  const targets = [...state.cases.values()].filter((c) => (TABS.find((t) => t.id === state.tab) || TABS[0]).match(c))
    .filter(matchesSearch).filter((c) => (c.actions || []).some((a) => a.name === "sign"));
  if (!targets.length || !confirm(`签收这 ${targets.length} 件案件？签收后处置计时开始。`)) return;
  batchButton.disabled = true;
  let done = 0;
  const failed = [];
  for (const c of targets) {
    batchButton.textContent = `正在签收 ${done + 1}/${targets.length}…`;
    try {
      const updated = await api.action(c.id, "sign", { version: c.version });
      state.cases.set(updated.id, updated);
      done += 1;
    } catch (err) {
      failed.push(`${c.number}：${err.message}`);
    }
  }
  batchButton.disabled = false;
  renderQueue();
  if (state.selected) select(state.selected);
  toast(failed.length ? `已签收 ${done} 件，${failed.length} 件未签收（${failed.join("；")}）` : `已签收 ${done} 件，处置计时开始`,
        failed.length ? "error" : "success");
});

// Every second: the countdowns move; a case that crosses into warning/overdue re-sorts the list.
function tick() {
  const now = Date.now();
  let moved = false;
  for (const node of listBox.querySelectorAll("[data-countdown-for]")) {
    const c = state.cases.get(node.dataset.countdownFor);
    if (!c) continue;
    const level = deadlineLevel(c, now);
    node.textContent = countdownText(c, now) || "—";
    node.className = `q-countdown level-${level}`;
    if (state.levels.get(c.id) !== level) moved = true;
  }
  if (moved) renderQueue();
  if (state.detail) state.detail.tick(now);
}

// -- the detail ------------------------------------------------------------------------------

// Below 1024 px the queue and the case take turns on one column (on a phone the case is a
// full-screen sheet): opening a case pushes a history entry, so the phone's Back (and 返回列表)
// closes the case instead of leaving the page, as /report's sheets do.
const ONE_COLUMN = window.matchMedia("(max-width: 1023px)");

function openDetail() {
  document.body.classList.add("show-detail");
  if (ONE_COLUMN.matches && !(history.state && history.state.deptDetail)) {
    history.pushState({ ...(history.state || {}), deptDetail: true }, "", location.href);
  }
}

function closeDetail() {
  document.body.classList.remove("show-detail");
  if (history.state && history.state.deptDetail) history.back();  // drop our entry
}

window.addEventListener("popstate", () => {
  if (!(history.state && history.state.deptDetail)) document.body.classList.remove("show-detail");
});

function showEmptyDetail(message) {
  if (state.detail) state.detail.destroy();
  state.detail = null;
  state.shown = null;
  closeDetail();
  detailBox.replaceChildren(el("div", { class: "detail-empty" },
    el("p", { class: "empty-title" }, message || "请从左侧选择一件案件"),
    el("p", { class: "muted" }, "新派遣给本部门的案件会自动出现在列表中，并有提示。")));
}

function select(id) {
  state.selected = id;
  state.detailDoc = null;
  renderQueue();
  renderDetail();
  openDetail();
  // Fresh data for the panel (history may have grown since the list was loaded).
  refreshCase(id).catch((err) => toast(err.message, "error"));
}

function renderDetail(doc) {
  const c = doc || state.cases.get(state.selected) || state.detailDoc;
  if (!c) return;
  if (state.detail) state.detail.destroy();
  state.shown = { id: c.id, version: c.version };
  const actions = availableActions(c);
  const body = el("div", { class: "detail-body" });
  fill(detailBox,
    el("div", { class: "detail-top" },
      el("button", { class: "btn btn-secondary btn-small back", type: "button", onclick: closeDetail }, "‹ 返回列表")),
    inQueue(c) ? null : el("p", { class: "detail-note" }, closedNote(c)),
    body);
  state.detail = renderCaseDetail(body, c, {
    actions,
    statusNames: QUEUE_STATUS_NAMES,
    onAction: (action) => act(action, c),
  });
  const reveal = callerReveal(c);
  if (reveal) body.querySelector(".cd-facts").after(reveal);
  const joint = jointPanel(c, { onUpdated: (updated) => upsertCase(updated) });  // 协办 parts, 退单待审
  if (joint) body.querySelector(".cd-head").after(joint);
  if (!actions.length && inQueue(c)) {
    const waiting = { handled: "已提交处置反馈，等待核查。", suspended: "案件已挂账，计时暂停，等待指挥中心恢复办理。" }[c.status];
    if (waiting) body.querySelector(".cd-head").after(el("p", { class: "detail-note" }, waiting));
  }
}

function closedNote(c) {
  if (!isAssigned(c) && myPart(c, myDepartment())) return "本部门的协办任务已完成，案件由主办部门继续办理。";
  if (c.status === "filed" && !isAssigned(c)) return "案件已退回指挥中心，等待重新派遣。";
  if (!isAssigned(c)) return "案件已改派其他部门，本部门仅可查看。";
  return `案件当前状态：${STATUS_NAMES[c.status] || c.status}，已不在待办列表中。`;
}

async function act(action, c) {
  try {
    const updated = await runAction(action, c);
    if (!updated) return; // cancelled
    upsertCase(updated);
    toast(`${updated.number} ${DONE_MESSAGES[action]}`, "success");
  } catch (err) {
    toast(err.message, "error");
    // Someone else moved the case (or it was re-dispatched): show it as it is now, with the
    // buttons its fresh `actions` still allow.
    await refreshCase(c.id).catch(() => {});
  }
}

// -- start -----------------------------------------------------------------------------------

async function main() {
  state.me = await mountHeader("部门工作台");
  document.getElementById("refresh").addEventListener("click", loadQueue);
  await loadQueue();
  // On a wide screen the most urgent case opens at once; on a tablet the list comes first.
  const first = listBox.querySelector(".q-item");
  if (first && !state.selected && matchMedia("(min-width: 1024px)").matches) select(first.dataset.id);
  setInterval(tick, 1000);
  connectLive({
    onEvent: (event) => {
      const id = event.case.id || (event.case.properties || {}).id;
      if (!id) return;
      refreshCase(id, { announce: true }).catch(() => {});
    },
    onResync: loadQueue,
    onStatus: (status) => {
      liveState.textContent = status === "online" ? "实时更新中" : "连接中断，正在重连…";
      liveState.className = "live-state " + status;
    },
  });
}

main().catch((err) => {
  listBox.replaceChildren(el("p", { class: "empty empty-error" }, "页面加载失败：" + err.message));
});
