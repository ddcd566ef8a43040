// The case detail sheet: facts, photos, the department's result and the history timeline.
import { STATUS_NAMES, api, formatTime } from "./api.js";
import { el } from "./dom.js";
import { ACTION_NAMES, deadlineBadge, departmentOf, loadingState, openSheet, photoStrip, placeOf, statusTag } from "./report-common.js";

const who = (entry, me) => (entry.by === "system" ? "系统" : entry.by === me.user.username ? "我" : entry.by_name || entry.by);

function fact(label, value) {
  if (value === null || value === undefined || value === "") return null;
  return [el("dt", {}, label), el("dd", {}, value)];
}

function timeline(c, me) {
  const entries = [...(c.history || [])].reverse();
  return el("ol", { class: "timeline" }, entries.map((h) => el("li", { class: `timeline-item action-${h.action}` },
    el("div", { class: "timeline-head" },
      el("span", { class: "timeline-action" }, ACTION_NAMES[h.action] || h.action),
      h.to && h.from !== h.to ? el("span", { class: "timeline-status" }, `→ ${STATUS_NAMES[h.to] || h.to}`) : null,
      el("time", { class: "timeline-time", datetime: h.at }, formatTime(h.at))),
    el("div", { class: "timeline-by muted" }, who(h, me)),
    h.result ? el("p", { class: "timeline-note" }, h.result) : null,
    h.note ? el("p", { class: "timeline-note" }, h.note) : null,
    h.action === "check" && h.passed !== undefined ? el("p", { class: `timeline-note ${h.passed ? "ok-text" : "bad-text"}` }, h.passed ? "核查通过" : "核查不通过，退回返工") : null,
    photoStrip(h.photos, `${ACTION_NAMES[h.action] || ""}照片`))));
}

export function renderCaseDetail(c, me) {
  const result = c.result;
  return el("article", { class: "case-detail", dataset: { caseId: c.id } },
    el("div", { class: "detail-head card" },
      el("div", { class: "detail-title" }, el("span", { class: "case-number" }, c.number), statusTag(c.status)),
      el("div", { class: "detail-category" }, c.category.name,
        c.priority === "urgent" ? el("span", { class: "tag tag-urgent" }, "紧急") : null, deadlineBadge(c)),
      el("dl", { class: "facts" },
        fact("位置", placeOf(c)),
        fact("派往部门", departmentOf(c) || "待指挥中心派遣"),
        fact("上报时间", formatTime(c.created_at)),
        fact("问题描述", c.description || "（未填写）"))),
    c.photos && c.photos.length ? el("section", { class: "card detail-section" }, el("h3", {}, "上报照片"), photoStrip(c.photos, "上报照片")) : null,
    result ? el("section", { class: "card detail-section" }, el("h3", {}, "处置结果"),
      el("p", {}, result.text), el("p", { class: "muted" }, formatTime(result.at)), photoStrip(result.photos, "处置照片")) : null,
    el("section", { class: "card detail-section" }, el("h3", {}, "办理过程"), timeline(c, me)));
}

export async function openCaseDetail(caseId, me) {
  const body = el("div", {}, loadingState());
  openSheet("案件详情", body);
  try {
    const c = await api.get(`/api/cases/${encodeURIComponent(caseId)}`);
    body.replaceChildren(renderCaseDetail(c, me));
  } catch (err) {
    body.replaceChildren(el("p", { class: "error-text" }, err.message));
  }
}
