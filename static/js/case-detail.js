// The case detail panel: the one renderer of a case, for the department workbench, the hotline
// console, the command centre and the grid worker's sheet (report-detail.js).
//
//   renderCaseDetail(container, caseDoc, {onAction, actions, map, statusNames, me, now})
//
//   container  an element; its children are replaced.
//   caseDoc    a case as returned by GET /api/cases/{id} (history, photos, deadlines, ...).
//   actions    optional [{action, label, kind?: "primary"|"secondary"|"danger", hint?}]: the
//              buttons to show in the action bar (the caller decides what the user may do).
//   onAction   called as onAction(action, caseDoc) when one of those buttons is pressed.
//   map        false to leave out the small location map (default: shown when Leaflet is loaded).
//   statusNames optional {status: label} overriding STATUS_NAMES for the status tag (a page may
//              name a state from its user's side, e.g. dispatched → 待签收 for a department).
//   me         optional /api/me answer: the reader's own history entries say "我".
//
// The map draws tiles only if the server configures a tile URL (map.js, from /api/me).
//
// Returns {destroy(), tick(now)}: destroy removes the map (call it before rendering another
// case into the same container); tick(now) redraws the live countdown of the current stage.
// The module loads its own stylesheet (/static/css/case-detail.css). Other exports:
// ACTION_NAMES (history action → Chinese), TYPE_NAMES, CHANNEL_NAMES, stageDeadline(case),
// deadlineLevel(case, now) → "ok"|"warning"|"overdue"|"none", countdownText(case, now),
// formatDuration("2wd"), openLightbox(src),
// confirmDialog({title, message, confirm, danger}) → Promise<boolean>,
// formDialog({title, body, submit, cancel, danger, wide, onSubmit}) → Promise<result|null>.
import { ACTION_NAMES, formatTime, STAGE_NAMES, STATUS_NAMES } from "./api.js";
import { el } from "./dom.js";
import { timerLevel, timerText } from "./time.js";
import { createCityMap, jurisdictions, pointMarker, textTooltip } from "./map.js";

// History entries and buttons are named by the server (api.js loads them); re-exported for
// the modules that read them from here.
export { ACTION_NAMES };

export const TYPE_NAMES = {
  consultation: "咨询", help: "求助", complaint: "投诉", report: "举报", suggestion: "建议", praise: "表扬",
};

export const CHANNEL_NAMES = {
  12345: "12345 政务服务热线", 12315: "12315 市场监管", 12319: "12319 城建", 12328: "12328 交通",
  12333: "12333 人社", 12350: "12350 安监", 12369: "12369 环保", web: "网站", wechat: "微信",
};

const SATISFACTION_NAMES = { satisfied: "满意", basic: "基本满意", unsatisfied: "不满意" };
const LEVEL_NAMES = { district: "区", street: "街道", community: "社区", grid: "网格", city: "市" };

// -- stylesheet ------------------------------------------------------------------------------

function ensureStylesheet() {
  if (document.querySelector('link[href="/static/css/case-detail.css"]')) return;
  document.head.append(el("link", { rel: "stylesheet", href: "/static/css/case-detail.css" }));
}

// -- deadlines -------------------------------------------------------------------------------

// The running stage's clock comes from the server (`case.timer`, counted on the limit's own
// clock: working hours for a wh/wd limit); time.js moves it on between refreshes.
// stageDeadline: {stage, iso, at} of the running clock, or null (no clock, or suspended).
export function stageDeadline(caseDoc) {
  const timer = caseDoc.timer;
  if (!timer || timer.paused) return null;
  return { stage: timer.stage, iso: timer.due_at, at: new Date(timer.due_at).getTime() };
}

// "overdue" (red), "warning" (yellow: 临期, the sweep's own instant), "ok", or "none" (no running clock).
export function deadlineLevel(caseDoc, now = Date.now()) {
  const level = timerLevel(caseDoc.timer, now);
  if (level === "none" || level === "paused") return (caseDoc.flags || {}).overdue ? "overdue" : "none";
  return level;
}

export function countdownText(caseDoc, now = Date.now()) {
  const timer = caseDoc.timer;
  if (!timer) return "";
  if (timer.paused) return `挂账中 · ${timerText(timer, now)}`;
  return `${STAGE_NAMES[timer.stage]}${timerText(timer, now)}`;
}

// -- dialogs ---------------------------------------------------------------------------------

// A modal <dialog>: Esc or 取消 closes it with null; `onSubmit(form)` returns the result (or
// throws an Error whose message is shown in the dialog, keeping it open).
export function formDialog({ title, body, submit = "确定", cancel = "取消", danger = false, onSubmit, wide = false }) {
  ensureStylesheet();
  return new Promise((resolve) => {
    const error = el("p", { class: "error-text", role: "alert" });
    const submitButton = el("button", { class: "btn" + (danger ? " btn-danger" : ""), type: "submit" }, submit);
    const form = el("form", { method: "dialog", class: "dlg-form", novalidate: true },
      el("h2", { class: "dlg-title" }, title),
      el("div", { class: "dlg-body" }, body),
      error,
      el("div", { class: "dlg-buttons" },
        cancel ? el("button", { class: "btn btn-secondary", type: "button", value: "cancel", onclick: () => dialog.close() }, cancel) : null,
        submitButton),
    );
    const dialog = el("dialog", { class: "dlg" + (wide ? " dlg-wide" : "") }, form);
    let result = null;
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.textContent = "";
      submitButton.disabled = true;
      try {
        result = onSubmit ? await onSubmit(form) : true;
        if (result === undefined) result = true;
        dialog.close();
      } catch (err) {
        error.textContent = err.message || String(err);
      } finally {
        submitButton.disabled = false;
      }
    });
    dialog.addEventListener("close", () => { dialog.remove(); resolve(result); });
    document.body.append(dialog);
    dialog.showModal();
    const first = form.querySelector(".dlg-body input:not([type=hidden]), .dlg-body textarea, .dlg-body select");
    (first || submitButton).focus();
  });
}

export async function confirmDialog({ title, message, confirm = "确定", danger = false }) {
  const result = await formDialog({ title, body: el("p", { class: "dlg-message" }, message), submit: confirm, danger });
  return result === true;
}

export function openLightbox(src, alt = "现场照片") {
  ensureStylesheet();
  const dialog = el("dialog", { class: "lightbox", "aria-label": "查看照片" },
    el("img", { src, alt }),
    el("button", { class: "lightbox-close", type: "button", "aria-label": "关闭", onclick: () => dialog.close() }, "×"));
  dialog.addEventListener("click", (event) => { if (event.target === dialog) dialog.close(); });
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
}

// -- pieces ----------------------------------------------------------------------------------

function statusTag(status, names) {
  return el("span", { class: `tag status status-${status}` }, (names && names[status]) || STATUS_NAMES[status] || status);
}

function flagTags(caseDoc, now) {
  const flags = caseDoc.flags || {};
  const level = deadlineLevel(caseDoc, now);
  const tags = [];
  if (flags.supervised) tags.push(el("span", { class: "tag flag-supervised" }, "督办"));
  if (level === "overdue") tags.push(el("span", { class: "tag level-overdue" }, "超期"));
  else if (level === "warning") tags.push(el("span", { class: "tag level-warning" }, "临期"));
  if (flags.extension_pending) tags.push(el("span", { class: "tag flag-extension" }, "延期申请中"));
  if (flags.escalated_to) tags.push(el("span", { class: "tag flag-escalated" }, "已上报上级"));
  if ((caseDoc.summons || []).some((s) => !s.checked_in_at)) tags.push(el("span", { class: "tag flag-summons" }, "吹哨待报到"));
  if (flags.needs_location) tags.push(el("span", { class: "tag level-warning" }, "待补充定位"));
  if (flags.verified) tags.push(el("span", { class: "tag level-ok" }, "已核实"));
  return tags;
}

function jurisdictionChain(caseDoc) {
  const j = caseDoc.jurisdiction || {};
  const parts = ["district", "street", "community", "grid"].map((level) => j[level] && j[level].name).filter(Boolean);
  return parts.length ? parts.join(" › ") : "未定位";
}

function fact(label, value, cls) {
  if (value === null || value === undefined || value === "") return null;
  return [el("dt", {}, label), el("dd", { class: cls || null }, value)];
}

function section(title, ...children) {
  return el("section", { class: "cd-section" }, el("h3", {}, title), ...children);
}

function photoStrip(ids, label) {
  if (!ids || !ids.length) return null;
  return el("div", { class: "cd-photos", role: "list", "aria-label": label },
    ids.map((id, i) => {
      const src = `/api/attachments/${encodeURIComponent(id)}`;
      return el("button", { class: "cd-thumb", type: "button", role: "listitem", title: "点击查看大图",
                            "aria-label": `${label} 第${i + 1}张，点击查看大图`, onclick: () => openLightbox(src, label) },
        el("img", { src, alt: `${label} ${i + 1}`, loading: "lazy" }));
    }));
}

function deadlineRows(caseDoc, now) {
  const d = caseDoc.deadlines || {};
  const current = stageDeadline(caseDoc);
  const done = { sign: caseDoc.signed_at, handle: caseDoc.handled_at, check: caseDoc.checked_at };
  const rows = [];
  for (const stage of ["sign", "handle", "check"]) {
    const iso = d[stage + "_by"];
    if (!iso && !done[stage]) continue;
    let state;
    if (current && current.stage === stage) {
      const level = deadlineLevel(caseDoc, now);
      state = el("span", { class: `cd-countdown level-${level}`, dataset: { countdown: "1" } }, countdownText(caseDoc, now));
    } else if (done[stage]) {
      state = el("span", { class: "muted" }, `${formatTime(done[stage])} 完成`);
    } else {
      state = el("span", { class: "muted" }, "—");
    }
    rows.push(el("tr", {}, el("th", {}, STAGE_NAMES[stage] + "时限"), el("td", {}, iso ? formatTime(iso) : "—"), el("td", {}, state)));
  }
  if (!rows.length) return null;
  return el("table", { class: "cd-deadlines" }, el("tbody", {}, rows));
}

// Who acted, as people read it: the server puts the person's name (by_name) beside the username.
function personName(record, me) {
  if (record.by === "system") return "系统";
  if (me && record.by === me.user.username) return "我";
  return record.by_name || record.by;
}

function historyEntry(entry, caseDoc, me) {
  let name = ACTION_NAMES[entry.action] || entry.action;
  if (entry.action === "report") name = caseDoc.source === "hotline" ? "登记" : "上报";
  if (entry.action === "check" && caseDoc.source === "hotline") name = "回访";
  if (entry.action === "escalate") name = entry.level || entry.escalated_to ? "上报上级" : "吹哨";
  const who = personName(entry, me);
  const kind = { warn: "warning", overdue: "overdue", return: "overdue", supervise: "overdue" }[entry.action] || "";
  const change = entry.from && entry.to && entry.from !== entry.to
    ? el("span", { class: "tl-change" }, `${STATUS_NAMES[entry.from] || entry.from} → ${STATUS_NAMES[entry.to] || entry.to}`)
    : null;
  const extra = [];
  if (entry.reason) extra.push(`原因：${entry.reason}`);
  if (entry.result) extra.push(`结果：${entry.result}`);
  if (entry.answer) extra.push(`答复：${entry.answer}`);
  if (entry.duration) extra.push(`申请延长：${formatDuration(entry.duration)}`);
  if (entry.until) extra.push(`申请延至：${formatTime(entry.until)}`);
  if (entry.satisfaction) extra.push(`满意度：${SATISFACTION_NAMES[entry.satisfaction] || entry.satisfaction}`);
  if (entry.contacted === false) extra.push("回访未联系上");
  if (entry.passed === false) extra.push("核查未通过，退回重办");
  return el("li", { class: `tl-item ${kind ? "tl-" + kind : ""}` },
    el("div", { class: "tl-head" },
      el("strong", {}, name), change,
      el("span", { class: "tl-meta" }, `${formatTime(entry.at)} · ${who}`)),
    entry.note ? el("div", { class: "tl-note" }, entry.note) : null,
    extra.length ? el("div", { class: "tl-note muted" }, joinNotes(extra)) : null);
}

// Notes after one another, each separated by "；" unless it already ends a sentence or clause
// ("原因：已处理完毕。" then "申请延长：…" reads "…完毕。申请延长：…", not "。；").
export function joinNotes(parts) {
  return parts.reduce((text, part) => (!text ? part : /[。！？；;.!?，,：:]$/.test(text) ? text + part : text + "；" + part), "");
}

export function formatDuration(text) {
  const m = /^(\d+(?:\.\d+)?)(wd|wh|d|h|m)$/.exec(String(text || "").trim());
  if (!m) return text;
  const unit = { wd: "个工作日", wh: "个工作小时", d: "天", h: "小时", m: "分钟" }[m[2]];
  return m[1] + unit;
}

// -- the small map ---------------------------------------------------------------------------

function drawMap(holder, caseDoc) {
  if (typeof L === "undefined" || !caseDoc.location) return null;
  const [lng, lat] = caseDoc.location.coordinates;
  const map = createCityMap(holder, { zoomControl: true, scrollWheelZoom: false, zoomAnimation: false, fadeAnimation: false })
    .setView([lat, lng], 16);
  map.alive = true; // false once removed: late layer loads must not touch it
  pointMarker([lat, lng], { tooltip: caseDoc.address || "案件位置" }).addTo(map);
  const grid = (caseDoc.jurisdiction || {}).grid;
  if (grid) {
    jurisdictions("community", { within: grid.id }).then((data) => {
      if (!map.alive) return;
      L.geoJSON(data, { style: { color: "#8a97a8", weight: 1, dashArray: "4 4", fill: false }, interactive: false }).addTo(map);
    }).catch(() => {});
    jurisdictions("grid", { within: grid.id }).then((data) => {
      if (!map.alive) return;
      const own = { ...data, features: data.features.filter((f) => f.properties.id === grid.id) };
      const layer = textTooltip(L.geoJSON(own, { style: { color: "#1456b8", weight: 2, fillColor: "#1456b8", fillOpacity: 0.08 } })
        .addTo(map), grid.name);
      layer.bringToBack();
      const bounds = layer.getBounds();
      if (bounds.isValid()) map.fitBounds(bounds.extend([lat, lng]), { padding: [16, 16], maxZoom: 17, animate: false });
    }).catch(() => {});
  }
  requestAnimationFrame(() => { if (map.alive) map.invalidateSize(); });
  return map;
}

// -- the panel -------------------------------------------------------------------------------

export function renderCaseDetail(container, caseDoc, { onAction, actions, map: withMap = true, statusNames = null, me = null,
                                                        now = Date.now() } = {}) {
  ensureStylesheet();
  const c = caseDoc;
  const category = c.category || {};
  const hotline = c.source === "hotline";
  const origin = hotline
    ? `${CHANNEL_NAMES[c.channel] || c.channel || "热线"} · ${TYPE_NAMES[c.type] || c.type || ""}`
    : "网格上报";
  const assignment = c.assignment || {};
  const department = assignment.department;

  const actionBar = actions && actions.length
    ? el("div", { class: "cd-actions" }, actions.map((a) =>
      el("button", { class: `btn ${a.kind === "secondary" ? "btn-secondary" : a.kind === "danger" ? "btn-danger" : ""}`,
                     type: "button", dataset: { action: a.action }, title: a.hint || null,
                     onclick: () => onAction && onAction(a.action, caseDoc) }, a.label)))
    : null;

  const facts = el("dl", { class: "cd-facts" },
    fact("案件来源", origin),
    fact("发生地址", c.address || (c.location ? "（地图定位）" : "未提供")),
    fact("附近", (c.place || {}).text),
    fact("属地", jurisdictionChain(c)),
    fact("责任部门", department ? department.name : "未派遣"),
    fact("派遣依据", assignment.reason || (c.routing || {}).reason || "—"),
    hotline && c.caller ? fact("来电人", [c.caller.name, c.caller.phone].filter(Boolean).join(" ") || "未留") : null,
    (c.callers || []).length ? fact(`并案来电人（${c.callers.length}）`, c.callers.map((k) =>
      `${[k.name, k.phone].filter(Boolean).join(" ") || "未留"}（${k.number || k.case}）`).join("；")) : null,
    fact("登记时间", formatTime(c.created_at)),
    (c.counters || {}).returns ? fact("退单次数", String(c.counters.returns), "text-overdue") : null,
    (c.counters || {}).reworks ? fact("返工次数", String(c.counters.reworks), "text-overdue") : null,
  );

  const result = c.result ? section("处置结果",
    el("p", { class: "cd-text" }, c.result.text),
    el("p", { class: "muted cd-small" }, `${formatTime(c.result.at)} · ${personName(c.result, me)}`),
    photoStrip(c.result.photos, "处置照片")) : null;

  const extension = c.extension_request ? section("延期申请（待审批）",
    el("p", { class: "cd-text" }, c.extension_request.duration
      ? `申请延长 ${formatDuration(c.extension_request.duration)}` : `申请延至 ${formatTime(c.extension_request.until)}`),
    el("p", { class: "muted cd-small" }, `理由：${c.extension_request.reason}`)) : null;

  const summons = (c.summons || []).length ? section("吹哨报到",
    el("ul", { class: "cd-list" }, c.summons.map((s) => el("li", {},
      el("span", {}, s.department.name), " ",
      s.checked_in_at
        ? el("span", { class: `tag ${s.late ? "level-warning" : "level-ok"}` }, `${formatTime(s.checked_in_at)} 已报到${s.late ? "（迟到）" : ""}`)
        : el("span", { class: "tag level-warning" }, `待报到，时限 ${formatTime(s.due_at)}`))))) : null;

  const callback = c.callback ? section("回访结果",
    el("p", { class: "cd-text" }, c.callback.contacted === false ? "回访未联系上来电人"
      : `${SATISFACTION_NAMES[c.callback.satisfaction] || "—"} · ${c.callback.resolved ? "已解决" : "未解决"}`),
    c.callback.note ? el("p", { class: "muted cd-small" }, c.callback.note) : null) : null;

  const answer = c.answer ? section("即时答复", el("p", { class: "cd-text" }, c.answer.text)) : null;
  const merged = c.merged_into ? section("并案", el("p", { class: "cd-text" }, `已并入案件 ${c.merged_into.number || c.merged_into.id}`)) : null;
  const mergedFrom = (c.merged_from || []).length ? section(`并入的重复诉求（${c.merged_from.length} 件）`,
    el("p", { class: "cd-text" }, c.merged_from.map((m) => m.number || m.id).join("、"))) : null;
  const returns = (c.returns || []).length ? section("退单记录",
    el("ul", { class: "cd-list" }, c.returns.map((r) => el("li", {}, `${formatTime(r.at)} ${r.department ? r.department.name : ""}：${r.reason}`)))) : null;

  const mapHolder = withMap && c.location && typeof L !== "undefined" ? el("div", { class: "cd-map", role: "img", "aria-label": "案件位置地图" }) : null;
  const history = (c.history || []).slice().reverse();

  container.replaceChildren(el("article", { class: "cd", "aria-label": `案件 ${c.number || ""}` },
    el("div", { class: "cd-head" },
      el("div", { class: "cd-title" },
        el("span", { class: "cd-number" }, c.number || "（无编号）"),
        statusTag(c.status, statusNames),
        c.priority === "urgent" ? el("span", { class: "tag tag-urgent" }, "紧急") : null),
      el("div", { class: "cd-category" }, category.name || "未分类", /^\d+$/.test(category.code || "") ? el("span", { class: "muted" }, ` ${category.code}`) : null),
      el("div", { class: "cd-flags" }, flagTags(c, now))),
    actionBar,
    el("div", { class: "cd-columns" },
      el("div", { class: "cd-main" },
        section("问题描述", el("p", { class: "cd-text" }, c.description || "（无描述）"), photoStrip(c.photos, "现场照片")),
        facts,
        deadlineRows(c, now) ? section("办理时限", deadlineRows(c, now)) : null,
        extension, summons, result, callback, answer, merged, mergedFrom, returns),
      el("div", { class: "cd-side" },
        mapHolder ? section("位置", mapHolder) : null,
        section("办理记录", history.length ? el("ol", { class: "timeline" }, history.map((h) => historyEntry(h, c, me))) : el("p", { class: "muted" }, "暂无记录")))),
  ));
  const leaflet = mapHolder ? drawMap(mapHolder, c) : null;
  return {
    destroy() { if (leaflet && leaflet.alive) { leaflet.alive = false; leaflet.remove(); } },
    // Refresh the live countdown of the current stage without re-rendering.
    tick(at = Date.now()) {
      for (const node of container.querySelectorAll("[data-countdown]")) {
        node.textContent = countdownText(c, at);
        node.className = `cd-countdown level-${deadlineLevel(c, at)}`;
      }
    },
  };
}
