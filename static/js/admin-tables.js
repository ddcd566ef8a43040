// The table-shaped kinds: departments, categories (codes, names, kind, priority, time limits,
// keywords and examples), and the calendar (working hours, holidays, make-up workdays). Each
// row keeps the item it was drawn from, so fields this page does not show are kept as they are.
import { el } from "./dom.js";
import { heading, input, loadKind, publishBar, select, words } from "./admin-common.js";

// A table of items with add and delete; `columns`: [{label, field(item) → {node, read(item)}}].
function itemTable(items, columns, blank) {
  const body = el("tbody", {});
  const rows = [];
  function addRow(item, isNew) {
    const cells = columns.map((c) => c.field(item));
    const row = { item, cells, node: null };
    row.node = el("tr", { class: isNew ? "added" : null },
      cells.map((cell) => el("td", {}, cell.node)),
      el("td", {}, el("button", { class: "btn btn-secondary btn-small", type: "button", title: "删除此行",
        onclick: () => { rows.splice(rows.indexOf(row), 1); row.node.remove(); } }, "删除")));
    for (const cell of cells) (cell.inputs || [cell.node]).forEach((n) => n.addEventListener("input", () => row.node.classList.add("changed")));
    rows.push(row);
    body.append(row.node);
    return row;
  }
  items.forEach((item) => addRow(item, false));
  const table = el("table", { class: "grid-table" },
    el("thead", {}, el("tr", {}, columns.map((c) => el("th", {}, c.label)), el("th", {}, ""))), body);
  return {
    table,
    add: () => addRow(structuredClone(blank), true).cells[0].node.focus(),
    items: () => rows.map((row) => {
      const item = structuredClone(row.item);
      row.cells.forEach((cell) => cell.read(item));
      return item;
    }),
  };
}

function textField(key, attrs = {}) {
  return (item) => {
    const node = input(item[key], { "aria-label": attrs.label || key, size: attrs.size || 12 });
    return { node, read: (out) => { const v = node.value.trim(); if (v || key in out) out[key] = v; } };
  };
}

function choiceField(key, options, fallback) {
  return (item) => {
    const node = select(item[key] || fallback, options, { "aria-label": key });
    return { node, read: (out) => { out[key] = node.value; } };
  };
}

function limitsField() {
  return (item) => {
    const limits = item.limits || {};
    const stages = [["sign", "签收"], ["handle", "处置"], ["check", "核查"]];
    const inputs = stages.map(([stage, label]) => input(limits[stage], { "aria-label": `${item.code || "新分类"} ${label}时限`, size: 5, title: `${label}时限，如 30m、4h、4wh、1wd` }));
    return {
      node: el("div", { class: "limits" }, inputs), inputs,
      read: (out) => { out.limits = Object.fromEntries(stages.map(([stage], i) => [stage, inputs[i].value.trim()])); },
    };
  };
}

function listField(key, { multiline = false, label } = {}) {
  return (item) => {
    const value = (item[key] || []).join(multiline ? "\n" : "，");
    const node = multiline ? el("textarea", { rows: 2, "aria-label": label || key }, value) : input(value, { "aria-label": label || key, size: 14 });
    return {
      node,
      read: (out) => {
        const list = multiline ? node.value.split("\n").map((s) => s.trim()).filter(Boolean) : words(node.value);
        if (list.length) out[key] = list; else delete out[key];
      },
    };
  };
}

async function tableEditor(holder, { kind, title, hint, columns, blank, reload }) {
  const { version, items, editable } = await loadKind(kind);
  const table = itemTable(items, columns, blank);
  holder.append(
    heading(title, version),
    el("p", { class: "muted" }, hint),
    el("div", { class: "toolbar" }, el("button", { class: "btn btn-secondary btn-small", type: "button", onclick: table.add }, "新增一行")),
    table.table,
    publishBar({ kind, version: () => version, items: table.items, done: reload, editable }),
  );
}

export function renderDepartments(holder, { reload }) {
  return tableEditor(holder, {
    kind: "departments", title: "部门", reload,
    hint: "类型（如 street_office、urban_management、water）用于“按类型派遣”：案件派给其所在位置最近一级辖区内该类型的部门。",
    blank: { id: "", name: "", type: "", jurisdiction: "" },
    columns: [
      { label: "部门 id", field: textField("id", { label: "部门 id" }) },
      { label: "名称", field: textField("name", { label: "部门名称", size: 18 }) },
      { label: "类型", field: textField("type", { label: "部门类型" }) },
      { label: "服务辖区 id", field: textField("jurisdiction", { label: "服务辖区" }) },
    ],
  });
}

export function renderCategories(holder, { reload }) {
  return tableEditor(holder, {
    kind: "categories", title: "事件分类与时限", reload,
    hint: "时限：30m、4h、3d 为自然时间；4wh 为工作小时，1wd 为工作日。新时限只用于发布之后开始的环节，正在计时的环节保持原期限。",
    blank: { code: "", name: "", kind: "event", priority: "normal", limits: { sign: "1wh", handle: "1wd", check: "4wh" } },
    columns: [
      { label: "代码", field: textField("code", { label: "分类代码", size: 6 }) },
      { label: "名称", field: textField("name", { label: "分类名称" }) },
      { label: "类型", field: choiceField("kind", [["component", "部件"], ["event", "事件"], ["hotline", "热线"]], "event") },
      { label: "优先级", field: choiceField("priority", [["normal", "一般"], ["urgent", "紧急"]], "normal") },
      { label: "时限（签收 / 处置 / 核查）", field: limitsField() },
      { label: "关键词", field: listField("keywords", { label: "关键词" }) },
      { label: "示例说法（每行一句）", field: listField("examples", { multiline: true, label: "示例说法" }) },
    ],
  });
}

export async function renderCalendar(holder, { reload }) {
  const { version, items, editable } = await loadKind("calendar");
  const hours = input((items.work_hours || []).join(", "), { "aria-label": "工作时间", size: 40 });
  const lists = { holidays: [...(items.holidays || [])], workdays: [...(items.workdays || [])] };
  function dateList(key, label) {
    const box = el("div", { class: "date-list" });
    const picker = el("input", { type: "date", "aria-label": `添加${label}` });
    function draw() {
      box.replaceChildren(...lists[key].map((day) => el("span", { class: "tag" }, day,
        el("button", { type: "button", title: "移除", "aria-label": `移除 ${day}`, onclick: () => { lists[key] = lists[key].filter((d) => d !== day); draw(); } }, "×"))),
      picker, el("button", { class: "btn btn-secondary btn-small", type: "button",
        onclick: () => { if (picker.value && !lists[key].includes(picker.value)) { lists[key].push(picker.value); lists[key].sort(); draw(); } } }, "添加"));
    }
    draw();
    return el("div", {}, el("label", {}, label), box);
  }
  holder.append(
    heading("节假日与工作时间", version),
    el("p", { class: "muted" }, "法定节假日和调休由日历库提供；这里的日期用于补充或覆盖（如城市的临时放假）。工作时间决定 wh / wd 时限如何计时。"),
    el("label", {}, "工作时间（逗号分隔，如 08:30-12:00, 13:30-17:30）"), hours,
    dateList("holidays", "额外放假日"),
    dateList("workdays", "额外工作日（调休上班）"),
    publishBar({
      kind: "calendar", version: () => version, done: reload, editable,
      items: () => ({ ...items, work_hours: words(hours.value), holidays: lists.holidays, workdays: lists.workdays }),
    }),
  );
}
