// 派遣规则: the ordered list of rules (lower priority number first; the first whose every
// condition holds assigns the case), each with every condition of the city package (categories,
// sources, near a zone kind within metres, in a zone kind, keywords, hours) and the assignment
// by department or by department type; the fallback (属地兜底). A dry run replays the last days'
// cases through the proposed rules before publishing.
import { request } from "./api.js";
import { el } from "./dom.js";
import { errorBox, heading, input, loadKind, publishBar, select, words } from "./admin-common.js";

function conditionRow(label, ...nodes) {
  return el("div", { class: "rule-row" }, el("label", {}, label), el("div", { class: "inline" }, ...nodes));
}

function assignEditor(assign, departments, types, name) {
  const byDepartment = assign && assign.department !== undefined;
  const mode = select(byDepartment ? "department" : "department_type",
    [["department_type", "按部门类型（属地最近一级）"], ["department", "指定部门"]], { "aria-label": `${name} 派遣方式` });
  const department = select(byDepartment ? assign.department : "", departments.map((d) => [d.id, `${d.name}（${d.id}）`]),
    { "aria-label": `${name} 派遣部门` });
  const type = select(byDepartment ? "" : (assign || {}).department_type, types.map((t) => [t, t]), { "aria-label": `${name} 部门类型` });
  const sync = () => { department.hidden = mode.value !== "department"; type.hidden = mode.value !== "department_type"; };
  mode.addEventListener("change", sync);
  sync();
  return {
    nodes: [mode, department, type],
    read: () => (mode.value === "department" ? { department: department.value } : { department_type: type.value }),
  };
}

function ruleCard(rule, ctx, list) {
  const when = rule.when || {};
  const name = rule.id || "新规则";
  const f = {
    id: input(rule.id, { "aria-label": "规则 id", size: 14 }),
    title: input(rule.name || rule.description || "", { "aria-label": `${name} 名称`, size: 24 }),
    priority: el("input", { type: "number", value: rule.priority ?? 100, "aria-label": `${name} 优先级`, step: "1" }),
    categories: input((when.categories || []).join("，"), { "aria-label": `${name} 分类代码`, placeholder: "分类代码，逗号分隔；* 表示全部" }),
    grid: el("input", { type: "checkbox", checked: (when.sources || []).includes("grid") }),
    hotline: el("input", { type: "checkbox", checked: (when.sources || []).includes("hotline") }),
    nearKind: select((when.near_zone || {}).kind || "", [["", "（不限）"], ...ctx.zoneKinds.map((k) => [k, k])], { "aria-label": `${name} 邻近区域类型` }),
    nearM: el("input", { type: "number", min: "0", value: (when.near_zone || {}).within_m ?? "", "aria-label": `${name} 邻近距离（米）`, placeholder: "米" }),
    inKind: select((when.in_zone || {}).kind || "", [["", "（不限）"], ...ctx.polygonKinds.map((k) => [k, k])], { "aria-label": `${name} 位于区域类型` }),
    keywords: input((when.keywords || []).join("，"), { "aria-label": `${name} 关键词`, placeholder: "任一关键词出现在描述中" }),
    hours: input(when.hours || "", { "aria-label": `${name} 时段`, placeholder: "如 22:00-06:00" }),
    setPriority: select(rule.set_priority || "", [["", "（不改）"], ["urgent", "紧急"], ["normal", "一般"]], { "aria-label": `${name} 设置优先级` }),
  };
  const assign = assignEditor(rule.assign, ctx.departments, ctx.types, name);
  const card = el("article", { class: "rule-card", dataset: { rule: rule.id || "" } },
    el("header", {}, el("b", {}, name),
      el("button", { class: "btn btn-secondary btn-small", type: "button", title: "上移", onclick: () => list.move(entry, -1) }, "↑"),
      el("button", { class: "btn btn-secondary btn-small", type: "button", title: "下移", onclick: () => list.move(entry, 1) }, "↓"),
      el("button", { class: "btn btn-secondary btn-small", type: "button", onclick: () => list.remove(entry) }, "删除")),
    conditionRow("规则 id / 名称", f.id, f.title),
    conditionRow("优先级", f.priority, el("span", { class: "muted" }, "数字越小越先匹配")),
    conditionRow("事件分类", f.categories),
    conditionRow("来源", el("label", {}, f.grid, "网格上报"), el("label", {}, f.hotline, "热线工单")),
    conditionRow("邻近区域", f.nearKind, f.nearM),
    conditionRow("位于区域内", f.inKind),
    conditionRow("关键词", f.keywords),
    conditionRow("时段", f.hours),
    conditionRow("派遣给", ...assign.nodes),
    conditionRow("优先级改为", f.setPriority),
  );
  const entry = {
    card,
    read() {
      const out = { ...structuredClone(rule), id: f.id.value.trim(), priority: Number(f.priority.value) };
      const title = f.title.value.trim();
      const key = rule.name === undefined && rule.description !== undefined ? "description" : "name";  // as the file has it
      if (title) out[key] = title; else delete out[key];
      const w = {};
      const cats = words(f.categories.value);
      if (cats.length) w.categories = cats;
      const sources = [f.grid.checked && "grid", f.hotline.checked && "hotline"].filter(Boolean);
      if (sources.length) w.sources = sources;
      if (f.nearKind.value) w.near_zone = { kind: f.nearKind.value, within_m: Number(f.nearM.value || 0) };
      if (f.inKind.value) w.in_zone = { kind: f.inKind.value };
      const keywords = words(f.keywords.value);
      if (keywords.length) w.keywords = keywords;
      if (f.hours.value.trim()) w.hours = f.hours.value.trim();
      out.when = w;
      out.assign = assign.read();
      if (f.setPriority.value) out.set_priority = f.setPriority.value; else delete out.set_priority;
      return out;
    },
  };
  return entry;
}

function dryRunView(result) {
  return el("div", { class: "dry-run", role: "status" },
    el("h3", {}, `试运行：重放最近 ${result.days} 天的 ${result.replayed} 件案件，${result.changed} 件会改派`,
      result.skipped ? el("span", { class: "muted" }, `（${result.skipped} 件无位置或分类已停用，未重放）`) : null),
    result.moves.length ? el("ul", {}, result.moves.map((m) => el("li", {}, `${m.from} → ${m.to}：${m.count} 件`))) : null,
    result.sample.length ? el("table", { class: "grid-table" },
      el("thead", {}, el("tr", {}, ["案件", "现行规则", "拟议规则"].map((h) => el("th", {}, h)))),
      el("tbody", {}, result.sample.map((s) => el("tr", {},
        el("td", {}, s.case.number || s.case.id, el("div", { class: "muted" }, (s.case.category || {}).name || "")),
        el("td", { class: "reason before" }, s.before.reason),
        el("td", { class: "reason" }, s.after.reason))))) : el("p", { class: "muted" }, "没有案件会改派。"));
}

export async function renderRules(holder, { reload }) {
  const [{ version, items, editable }, departments, zones] = await Promise.all([
    loadKind("rules"), request("GET", "/api/admin/config/departments"), request("GET", "/api/admin/config/zones")]);
  const depts = departments.items;
  const ctx = {
    departments: depts,
    types: [...new Set(depts.map((d) => d.type))].sort(),
    zoneKinds: [...new Set(zones.items.map((z) => (z.properties || {}).kind).filter(Boolean))].sort(),
    polygonKinds: [...new Set(zones.items.filter((z) => /Polygon/.test((z.geometry || {}).type || ""))
      .map((z) => (z.properties || {}).kind).filter(Boolean))].sort(),
  };
  const box = el("div", {});
  const entries = [];
  const list = {
    move(entry, step) {
      const i = entries.indexOf(entry), j = i + step;
      if (j < 0 || j >= entries.length) return;
      // Moving swaps the two rules' priority numbers too: the order shown is the order applied.
      const a = entry.card.querySelector('input[type="number"]'), b = entries[j].card.querySelector('input[type="number"]');
      [a.value, b.value] = [b.value, a.value];
      [entries[i], entries[j]] = [entries[j], entries[i]];
      box.replaceChildren(...entries.map((e) => e.card));
    },
    remove(entry) { entries.splice(entries.indexOf(entry), 1); entry.card.remove(); },
  };
  const ordered = [...(items.rules || [])].map((r, i) => [r, i]).sort((a, b) => ((a[0].priority ?? 100) - (b[0].priority ?? 100)) || a[1] - b[1]);
  for (const [rule] of ordered) entries.push(ruleCard(rule, ctx, list));
  box.replaceChildren(...entries.map((e) => e.card));
  const fallback = assignEditor(items.fallback, depts, ctx.types, "兜底");
  const proposed = () => ({ ...items, fallback: { ...(items.fallback || {}), department: undefined, department_type: undefined, ...fallback.read() }, rules: entries.map((e) => e.read()) });
  const clean = (value) => JSON.parse(JSON.stringify(value));  // drops the undefined keys
  const days = el("input", { type: "number", min: "1", max: "90", value: "30", "aria-label": "试运行天数", size: 4 });
  const dryOut = el("div", {});
  async function dryRun() {
    dryOut.replaceChildren(el("p", { class: "muted" }, "正在重放…"));
    try {
      const result = await request("POST", "/api/admin/config/rules/dry-run", { items: clean(proposed()), days: Number(days.value) });
      dryOut.replaceChildren(dryRunView(result));
    } catch (err) { dryOut.replaceChildren(errorBox(err, reload)); }
  }
  holder.append(
    heading("派遣规则", version),
    el("p", { class: "muted" }, "规则按优先级从小到大依次匹配，给出的条件须全部满足；都不匹配时按兜底规则派给属地。在办案件保持原派遣，只有新案件按新规则派遣。"),
    conditionRow("兜底（属地）", ...fallback.nodes),
    el("div", { class: "toolbar" }, el("button", { class: "btn btn-secondary btn-small", type: "button",
      onclick: () => { const e = ruleCard({ id: "", priority: 100, when: { categories: ["*"] }, assign: { department_type: ctx.types[0] } }, ctx, list); entries.push(e); box.append(e.card); } }, "新增规则")),
    box,
    dryOut,
    publishBar({
      kind: "rules", version: () => version, items: () => clean(proposed()), done: reload, editable,
      extra: [el("span", {}, "试运行最近"), days, el("span", {}, "天"),
        el("button", { class: "btn btn-secondary", type: "button", onclick: dryRun }, "试运行")],
    }),
  );
}
