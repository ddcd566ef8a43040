// What the command centre may do with a case — the dispatcher's closed-loop steps and the
// commander's 督办 / 吹哨 — and the forms that collect each action's fields.
import { ACTION_NAMES, api, formatTime } from "./api.js";
import { el } from "./dom.js";
import { needText, textarea } from "./form-fields.js";
import { confirmDialog, formDialog } from "./case-detail.js";
import { supportField, supportValues } from "./joint.js";

// Whether a button shows is the server's decision alone (`case.actions`, with its label); what
// stays here is UI: how prominent each button is, its hint, and the form that asks for fields.
const UI = {
  file: { kind: "primary" },
  relocate: { kind: "primary", hint: "在地图上点选案件位置" },
  dispatch: { kind: "primary", hint: "选择责任部门派遣，或改派给其他部门" },
  approve_extension: { kind: "primary" },
  reject_extension: { kind: "secondary" },
  close: { kind: "primary" },
  resume: { kind: "primary" },
  supervise: { kind: "secondary", hint: "对责任部门督办并留言" },
  escalate: { kind: "secondary", hint: "上报上一级，或召集部门限时报到" },
  suspend: { kind: "secondary", hint: "暂时无法解决的案件挂账，计时暂停" },
  merge: { kind: "secondary", hint: "与已登记的同一问题合并办理" },
  reopen: { kind: "secondary" },
  void: { kind: "danger" },
};
const ORDER = Object.keys(UI);

// The buttons for a case: its allowed actions that this page has a form for, in page order.
export function availableActions(c) {
  return (c.actions || []).filter((a) => UI[a.name])
    .sort((a, b) => ORDER.indexOf(a.name) - ORDER.indexOf(b.name))
    .map((a) => ({ action: a.name, label: a.label, ...UI[a.name] }));
}

export function canDispatch(me) { return me.user.role === "dispatcher"; }

// "已派遣", "已结案"…: the outcome named with the server's own word for the action.
export function doneText(action) { return "已" + (ACTION_NAMES[action] || "处理"); }

// -- departments --------------------------------------------------------------------------

// A <select> of departments: suggestions for this case first, then the city's departments
// grouped by district. `directory` = {departments, districtOf(jurisdictionId), districtName(id)}.
export function departmentSelect(directory, c, { id = "dept-select", exclude = null } = {}) {
  const routed = ((c.assignment || {}).department || {}).id || null;
  const caseDistrict = c.district || null;
  const byGroup = new Map();
  const suggested = [];
  for (const d of directory.departments) {
    if (d.id === exclude) continue;
    const districtId = directory.districtOf(d.jurisdiction);
    const group = districtId ? directory.districtName(districtId) : d.jurisdiction === directory.cityId ? "市级部门" : "其他";
    if (!byGroup.has(group)) byGroup.set(group, []);
    byGroup.get(group).push(d);
    const street = c.street && directory.nameOf(d.jurisdiction) === c.street;
    if (d.id === routed || street) suggested.push(d);
  }
  const option = (d) => el("option", { value: d.id, selected: d.id === routed && d.id !== exclude ? true : null }, d.name);
  const groups = [...byGroup.entries()].sort(([a], [b]) => {
    const rank = (g) => (g === caseDistrict ? 0 : g === "市级部门" ? 1 : g === "其他" ? 3 : 2);
    return rank(a) - rank(b) || a.localeCompare(b, "zh-CN");
  });
  const seen = new Set(suggested.map((d) => d.id));
  return el("select", { id, name: id, required: true },
    routed ? null : el("option", { value: "" }, "请选择责任部门"),
    suggested.length ? el("optgroup", { label: "建议" }, suggested.map(option)) : null,
    groups.map(([group, list]) => el("optgroup", { label: group },
      list.filter((d) => !seen.has(d.id)).map((d) => el("option", { value: d.id }, d.name)))));
}

// -- the forms ----------------------------------------------------------------------------

function chips(target, options) {
  return el("div", { class: "chips", role: "group", "aria-label": "常用语" }, options.map((text) =>
    el("button", { class: "chip", type: "button", onclick: (e) => {
      const box = e.target.closest("form").elements[target];
      box.value = text;
      box.focus();
    } }, text)));
}

const post = (c, action, body) => api.action(c.id, action, { ...body, version: c.version });

// Runs `action` on the case document `c` (asking for fields first). Resolves to the updated
// case, or null when the user cancelled. `ctx` = {directory, pickLocation(c) → [lng, lat]|null}.
export async function runAction(action, c, ctx) {
  const forms = { file, dispatch, relocate, approve_extension: approve, reject_extension: reject, close,
                  resume, supervise, escalate, suspend, reopen, merge, void: voidCase };
  return forms[action](c, ctx, action);
}

async function file(c) {
  return post(c, "file", {});
}

// Dispatch (or re-dispatch); a case still `reported` is filed first.
export async function dispatchTo(c, department, note, support = []) {
  let current = c;
  if (current.status === "reported") current = await post(current, "file", {});
  return api.action(current.id, "dispatch", { department, version: current.version, ...(note ? { note } : {}),
                                              ...(support.length ? { support } : {}) });
}

async function dispatch(c, ctx) {
  const again = c.status === "dispatched"; // 改派
  const current = ((c.assignment || {}).department || {});
  let result = null;
  const select = departmentSelect(ctx.directory, summaryOf(c), { exclude: again ? current.id : null });
  await formDialog({
    title: `${again ? "改派" : "派遣"} · ${c.number}`,
    submit: again ? "确认改派" : c.status === "reported" ? "立案并派遣" : "确认派遣",
    body: [
      el("p", { class: "muted dlg-message" }, again ? `当前承办：${current.name || "—"}` :
        `系统建议：${current.name || "未能自动确定"}${(c.assignment || {}).reason ? `（${c.assignment.reason}）` : ""}`),
      el("label", { for: "dept-select" }, "责任部门"), select,
      ...supportField(ctx.directory),  // 协办部门 (joint handling)
      ...textarea("dispatch-note", "派遣说明（可选）", { placeholder: "如：请重点核实现场情况" }),
    ],
    onSubmit: async (form) => {
      const department = form.elements["dept-select"].value;
      if (!department) { form.elements["dept-select"].focus(); throw new Error("请选择责任部门"); }
      result = await dispatchTo(c, department, form.elements["dispatch-note"].value.trim(), supportValues(form));
    },
  });
  return result;
}

async function relocate(c, ctx) {
  const point = await ctx.pickLocation(c);
  if (!point) return null;
  let routed = null;
  try {
    routed = await api.get(`/api/route?lng=${point[0]}&lat=${point[1]}&category=${encodeURIComponent(c.category.code)}&source=${c.source}`);
  } catch (err) {
    throw new Error(err.message);
  }
  const j = routed.jurisdiction || {};
  const where = ["district", "street", "community", "grid"].map((l) => j[l] && j[l].name).filter(Boolean).join(" › ");
  let result = null;
  await formDialog({
    title: `补充定位 · ${c.number}`,
    submit: "确认位置",
    body: [
      el("p", { class: "dlg-message" }, `所选位置：${where || "（未能识别所属辖区）"}`),
      el("p", { class: "muted dlg-message" }, `系统建议派遣：${routed.department ? routed.department.name : "未能确定，需人工选择"}`),
      ...textarea("relocate-address", "地址描述（可选）", { value: c.address || "", max: 200, rows: 2 }),
    ],
    onSubmit: async (form) => {
      const address = form.elements["relocate-address"].value.trim();
      result = await post(c, "relocate", { location: { type: "Point", coordinates: point }, ...(address ? { address } : {}) });
    },
  });
  return result;
}

async function approve(c) {
  const r = c.extension_request || {};
  const ok = await confirmDialog({
    title: `批准延期 · ${c.number}`,
    message: `${r.duration ? `申请延长 ${r.duration.replace("wd", " 个工作日").replace("wh", " 个工作小时")}` : `申请延至 ${formatTime(r.until)}`}\n理由：${r.reason || "—"}`,
    confirm: "批准",
  });
  return ok ? post(c, "approve_extension", {}) : null;
}

async function reject(c) {
  let result = null;
  await formDialog({
    title: `驳回延期 · ${c.number}`, submit: "驳回", danger: true,
    body: textarea("reject-note", "驳回意见", { required: true, placeholder: "如：问题影响较大，请按原时限办结" }),
    onSubmit: async (form) => { result = await post(c, "reject_extension", { note: needText(form, "reject-note", "请填写驳回意见") }); },
  });
  return result;
}

async function close(c) {
  const ok = await confirmDialog({ title: `结案 · ${c.number}`, message: "案件已核查通过，确认结案？", confirm: "确认结案" });
  return ok ? post(c, "close", {}) : null;
}

async function resume(c) {
  const ok = await confirmDialog({ title: `恢复办理 · ${c.number}`, message: "恢复后处置计时继续，确认恢复办理？", confirm: "恢复办理" });
  return ok ? post(c, "resume", {}) : null;
}

async function supervise(c) {
  let result = null;
  await formDialog({
    title: `督办 · ${c.number}`, submit: "发出督办",
    body: [
      el("p", { class: "muted dlg-message" }, `承办部门：${((c.assignment || {}).department || {}).name || "尚未派遣"}`),
      ...textarea("supervise-note", "督办意见", { required: true, placeholder: "督办要求，将记入案件办理记录" }),
      chips("supervise-note", ["请立即处置并于今日内反馈结果", "该案件已超期，请加快办理", "群众反映强烈，请优先处置"]),
    ],
    onSubmit: async (form) => { result = await post(c, "supervise", { note: needText(form, "supervise-note", "请填写督办意见") }); },
  });
  return result;
}

async function escalate(c, ctx) {
  let result = null;
  const s = summaryOf(c);
  const caseDistrict = s.district;
  // The case's own street and district first, then the city's departments.
  const dir = ctx.directory;
  const local = dir.departments.filter((d) => {
    const districtId = dir.districtOf(d.jurisdiction);
    return districtId && dir.districtName(districtId) === caseDistrict &&
      (dir.level(d.jurisdiction) === "district" || dir.nameOf(d.jurisdiction) === s.street);
  }).sort((a, b) => (dir.level(b.jurisdiction) === "street") - (dir.level(a.jurisdiction) === "street"));
  const candidates = [...local, ...dir.departments.filter((d) => d.jurisdiction === dir.cityId)];
  const list = el("div", { class: "check-list", id: "summon-list", role: "group", "aria-label": "召集部门" },
    candidates.map((d) => el("label", { class: "check" },
      el("input", { type: "checkbox", name: "summon", value: d.id }), el("span", {}, d.name))));
  const summonBox = el("div", { class: "summon-box", hidden: true },
    el("p", { class: "field-hint" }, "勾选需要到场报到的部门（可多选）"), list,
    el("label", { for: "summon-within" }, "报到时限"),
    el("select", { id: "summon-within", name: "summon-within" },
      [["30m", "30 分钟内"], ["1h", "1 小时内"], ["2h", "2 小时内"], ["4h", "4 小时内"], ["1wd", "1 个工作日内"]]
        .map(([v, t]) => el("option", { value: v, selected: v === "2h" ? true : null }, t))));
  const choose = (e) => { summonBox.hidden = e.target.value !== "summon"; };
  await formDialog({
    title: `吹哨 · ${c.number}`, submit: "确认吹哨", wide: true,
    body: [
      el("div", { class: "radio-row", role: "radiogroup", "aria-label": "吹哨方式" },
        el("label", { class: "radio" }, el("input", { type: "radio", name: "esc-mode", value: "up", checked: true, onchange: choose }), "上报上一级指挥中心"),
        el("label", { class: "radio" }, el("input", { type: "radio", name: "esc-mode", value: "summon", onchange: choose }), "召集部门限时报到")),
      summonBox,
      ...textarea("esc-note", "说明", { placeholder: "如：涉及多个部门职责，需上级协调" }),
    ],
    onSubmit: async (form) => {
      const note = form.elements["esc-note"].value.trim();
      const body = note ? { note } : {};
      if (form.elements["esc-mode"].value === "summon") {
        const departments = [...form.querySelectorAll("input[name=summon]:checked")].map((i) => i.value);
        if (!departments.length) throw new Error("请至少勾选一个召集部门");
        Object.assign(body, { departments, within: form.elements["summon-within"].value });
      } else {
        body.to = "up";
      }
      result = await post(c, "escalate", body);
    },
  });
  return result;
}

async function reasonAction(c, action, title, label, submit, quick, danger = true) {
  let result = null;
  await formDialog({
    title: `${title} · ${c.number}`, submit, danger,
    body: [...textarea(`${action}-reason`, label, { required: true }), quick ? chips(`${action}-reason`, quick) : null],
    onSubmit: async (form) => { result = await post(c, action, { reason: needText(form, `${action}-reason`, `请填写${label}`) }); },
  });
  return result;
}

function suspend(c) {
  return reasonAction(c, "suspend", "挂账", "挂账原因", "确认挂账", ["涉及历史遗留问题，需统筹解决", "需纳入专项整治计划"]);
}

function reopen(c) {
  return reasonAction(c, "reopen", "重新办理", "重办原因", "重新办理", ["群众反映问题未解决", "回访不满意，需重新处置"], false);
}

// 并案: the master is named by its number, as the dispatcher reads it off the other case.
async function merge(c) {
  let result = null;
  await formDialog({
    title: `并案 · ${c.number}`, submit: "确认并案",
    body: [
      el("p", { class: "muted dlg-message" }, "本案件并入主案后不再单独办理，上报人并入主案。"),
      el("label", { for: "merge-into" }, "主案编号"),
      el("input", { id: "merge-into", name: "merge-into", required: true, maxlength: 40, placeholder: "如：20261122-000123" }),
      ...textarea("merge-note", "说明（可选）", { rows: 2 }),
    ],
    onSubmit: async (form) => {
      const number = needText(form, "merge-into", "请填写主案编号");
      const found = await api.get(`/api/cases?q=${encodeURIComponent(number)}&open=true&limit=5`);
      const master = found.items.find((m) => m.number === number && m.id !== c.id);
      if (!master) { form.elements["merge-into"].focus(); throw new Error("未找到该编号的在办案件"); }
      const note = form.elements["merge-note"].value.trim();
      result = await post(c, "merge", { into: master.id, ...(note ? { note } : {}) });
    },
  });
  return result;
}

export function voidCase(c) {
  return reasonAction(c, "void", "作废", "作废原因", "确认作废", ["重复上报，已有同一问题在办", "经核实问题不存在", "不属于受理范围"]);
}

// A case document's place names, as the summaries carry them.
function summaryOf(c) {
  if (c.district !== undefined) return c;
  const j = c.jurisdiction || {};
  return { ...c, district: j.district ? j.district.name : null, street: j.street ? j.street.name : null };
}
