// 主办/协办 (joint handling) and 退单审核 (派单异议) for the department and command pages.
//
// The parts' state comes with the case (`case.support`, `case.return_request`); which buttons
// show is the server's decision alone (`case.actions`). The pages call:
//   jointBadges(c, department)             badges for a queue item (主办 / 协办 / 退单待审)
//   isSupporting(c, department)            the department has an open 协办 part on the case
//   jointPanel(c, {department, onUpdated}) the parts' progress and their buttons, or null
//   mountReturnQueue(box, {onOpen})        the dispatcher's list of returns awaiting review
//   supportField(directory), supportValues(form)   the 协办 picker of the dispatch form
import { api, formatTime, toast } from "./api.js";
import { el } from "./dom.js";
import { formDialog } from "./case-detail.js";

export const PART_NAMES = { dispatched: "待签收", signed: "处置中", done: "已反馈", lapsed: "逾期未反馈" };
const OPEN_PARTS = ["dispatched", "signed"];
// The actions this module has buttons for, in the order shown.
const JOINT_ACTIONS = ["support_sign", "support_feedback", "approve_return", "reject_return"];
const DONE = {
  support_sign: "已签收协办任务", support_feedback: "协办反馈已提交",
  approve_return: "已同意退单，案件回到待派遣", reject_return: "已驳回退单，案件退回原部门继续办理",
};

function leadOf(c) { return ((c.assignment || {}).department) || null; }

export function myPart(c, department) {
  return (c.support || []).find((p) => p.department && p.department.id === department) || null;
}

export function isSupporting(c, department) {
  const part = myPart(c, department);
  return !!part && OPEN_PARTS.includes(part.status) && !["closed", "void", "merged"].includes(c.status);
}

export function jointBadges(c, department) {
  const out = [];
  const lead = leadOf(c);
  if ((c.support || []).length && lead && lead.id === department) out.push(el("span", { class: "badge badge-lead" }, "主办"));
  if (myPart(c, department)) out.push(el("span", { class: "badge badge-support" }, "协办"));
  if ((c.flags || {}).return_pending) out.push(el("span", { class: "badge badge-return" }, "退单待审"));
  return out;
}

function partLine(p) {
  const late = p.late && OPEN_PARTS.includes(p.status);
  return el("li", { dataset: { department: p.department.id, status: p.status } },
    el("span", { class: "badge badge-support" }, "协办"),
    el("strong", {}, p.department.name),
    el("span", { class: "joint-part-status" }, PART_NAMES[p.status] || p.status),
    p.due && OPEN_PARTS.includes(p.status)
      ? el("span", { class: late ? "joint-part-late" : "muted" },
        `${p.stage === "sign" ? "签收" : "处置"}时限 ${formatTime(p.due)}${late ? "（已超期）" : ""}`)
      : null,
    p.feedback ? el("span", { class: "joint-part-feedback" }, `反馈：${p.feedback.text}`) : null);
}

export function jointPanel(c, { onUpdated } = {}) {
  const parts = c.support || [];
  const pending = (c.flags || {}).return_pending ? c.return_request || {} : null;
  const actions = (c.actions || []).filter((a) => JOINT_ACTIONS.includes(a.name))
    .sort((a, b) => JOINT_ACTIONS.indexOf(a.name) - JOINT_ACTIONS.indexOf(b.name));
  if (!parts.length && !pending) return null;
  const lead = leadOf(c);
  return el("section", { class: "joint-panel" + (pending ? " joint-return" : ""), "aria-label": "联合办理" },
    parts.length ? el("h3", {}, "联合办理") : null,
    parts.length ? el("ul", { class: "joint-parts" },
      lead ? el("li", {}, el("span", { class: "badge badge-lead" }, "主办"), el("strong", {}, lead.name)) : null,
      parts.map(partLine)) : null,
    pending ? el("p", { class: "joint-return-note" }, el("span", { class: "badge badge-return" }, "退单待审"),
      `${(pending.department || {}).name || ""} 于 ${formatTime(pending.at)} 退单：${pending.reason || ""}（审核期间计时暂停）`) : null,
    actions.length ? el("div", { class: "joint-actions" }, actions.map((a) => el("button", {
      class: "btn" + (a.name === "reject_return" ? " btn-secondary" : ""), type: "button",
      dataset: { action: a.name },
      onclick: () => run(a.name, c, onUpdated),
    }, a.label))) : null);
}

function reasonDialog(title, label, placeholder, submit, send) {
  return formDialog({
    title, submit,
    body: [el("label", { for: "joint-text" }, label, el("span", { class: "req", "aria-hidden": "true" }, " *")),
      el("textarea", { id: "joint-text", name: "joint-text", rows: 4, maxlength: 2000, required: true, placeholder })],
    onSubmit: async (form) => {
      const value = form.elements["joint-text"].value.trim();
      if (!value) { form.elements["joint-text"].focus(); throw new Error(`请填写${label}`); }
      return send(value);
    },
  });
}

async function run(action, c, onUpdated) {
  const post = (body) => api.action(c.id, action, { ...body, version: c.version });
  try {
    let updated;
    if (action === "support_feedback") {
      updated = await reasonDialog(`协办反馈 · ${c.number}`, "本部门处置情况", "如：已配合清理河岸垃圾", "提交反馈",
        (result) => post({ result }));
    } else if (action === "reject_return") {
      updated = await reasonDialog(`驳回退单 · ${c.number}`, "驳回理由", "如：属于本部门职责，请继续办理", "驳回退单",
        (reason) => post({ reason }));
    } else {
      updated = await post({});
    }
    if (!updated || updated === true) return;
    toast(`${updated.number} ${DONE[action]}`, "success");
    if (onUpdated) onUpdated(updated);
  } catch (err) {
    toast(err.message, "error");
  }
}

// -- the dispatch form's 协办 picker (/command) -------------------------------------------------

export function supportField(directory) {
  return [
    el("label", { for: "support-select" }, "协办部门（可选，按住 Ctrl 多选）"),
    el("select", { id: "support-select", name: "support-select", multiple: true, size: 4 },
      directory.departments.map((d) => el("option", { value: d.id }, d.name))),
  ];
}

export function supportValues(form) {
  const select = form.elements["support-select"];
  return select ? [...select.selectedOptions].map((o) => o.value) : [];
}

// -- the dispatcher's review queue (/command) --------------------------------------------------

export function mountReturnQueue(box, { onOpen } = {}) {
  const list = el("ul", { class: "return-queue", id: "return-queue", "aria-live": "polite" });
  const count = el("span", { class: "badge badge-return", id: "return-count" }, "0");
  const section = el("section", { class: "panel joint-panel", id: "return-review", "aria-label": "退单待审" },
    el("h3", {}, "退单待审 ", count, " ", el("a", { href: "/catalogue", class: "muted" }, "派单目录")), list);
  box.prepend(section);
  let timer = null;

  async function refresh() {
    // The server keeps to the cases waiting for review: a busy city's hundreds of dispatched
    // cases no longer push a pending return out of the first page.
    const page = await api.get("/api/cases?return_pending=true&limit=100");
    const pending = page.items;
    list.replaceChildren(...pending.map((c) => el("li", { dataset: { id: c.id } },
      el("div", {},
        el("button", { class: "btn-link", type: "button", onclick: () => onOpen && onOpen(c.id) }, c.number),
        ` ${(c.category || {}).name || ""}`),
      jointPanel(c, { onUpdated: () => schedule(0) }))));
    count.textContent = page.next ? `${pending.length}+` : String(pending.length);
    section.classList.toggle("joint-return", pending.length > 0);
  }

  function schedule(delay = 1000) {
    clearTimeout(timer);
    timer = setTimeout(() => refresh().catch((err) => toast(err.message, "error")), delay);
  }

  schedule(0);
  return { refresh: () => schedule() };
}
