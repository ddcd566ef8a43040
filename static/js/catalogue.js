// /catalogue: the dispatch catalogue (派单目录) published from the rules, with disputed entries
// marked; dispatchers and admins also see the latest disputes (approved returns).
import { api } from "./api.js";
import { el } from "./dom.js";
import { mountHeader } from "./header.js";
import { formatTime } from "./time.js";

const body = document.getElementById("catalogue-body");
const filter = document.getElementById("catalogue-filter");
const disputedOnly = document.getElementById("catalogue-disputed");
const summary = document.getElementById("catalogue-summary");
let rows = [];
let levelNames = {};

function matches(row, text) {
  if (disputedOnly.checked && !row.disputed) return false;
  if (!text) return true;
  return [row.category, row.category_name, row.department_type, row.rule_name, row.department_examples]
    .some((value) => (value || "").toLowerCase().includes(text));
}

function render() {
  const text = filter.value.trim().toLowerCase();
  const shown = rows.filter((row) => matches(row, text));
  body.replaceChildren(...shown.map((row) => el("tr", { class: row.disputed ? "disputed" : "" },
    el("td", {}, `${row.category} ${row.category_name}`),
    el("td", {}, String(row.order)),
    el("td", {}, row.rule_name),
    el("td", {}, row.conditions || "—"),
    el("td", {}, row.department_type || "—"),
    el("td", {}, row.department_examples || "—"),
    el("td", {}, row.level_names || "—"),
    el("td", {}, row.disputes ? el("span", { class: "badge badge-dispute" }, `${row.disputes} 次`) : "—"),
  )));
  if (!shown.length) body.replaceChildren(el("tr", {}, el("td", { colspan: "8", class: "muted" }, "没有符合条件的条目")));
  const disputed = rows.filter((row) => row.disputed).length;
  summary.textContent = `共 ${rows.length} 条，显示 ${shown.length} 条；有异议的条目 ${disputed} 条`;
}

async function loadDisputes() {
  const page = await api.get("/api/catalogue/disputes?limit=20");
  const section = document.getElementById("catalogue-disputes");
  const list = document.getElementById("disputes-list");
  list.replaceChildren(...page.items.map((item) => el("li", {},
    el("strong", {}, `${item.category} ${item.category_name || ""}`),
    ` → ${item.department.name}（规则 ${item.rule}，${levelNames[item.level] || item.level || "—"}）：${item.reason || ""}`,
    el("span", { class: "muted" }, ` 案件 ${item.number || item.case_id}，${formatTime(item.at)}`),
  )));
  section.hidden = !page.items.length;
}

async function main() {
  const me = await mountHeader("派单目录");
  const data = await api.get("/api/catalogue");
  rows = data.items;
  levelNames = data.levels || {};
  document.getElementById("catalogue-table").setAttribute("aria-busy", "false");
  render();
  filter.addEventListener("input", render);
  disputedOnly.addEventListener("change", render);
  if (["dispatcher", "admin"].includes(me.user.role)) await loadDisputes();
}

main().catch((err) => {
  body.replaceChildren(el("tr", {}, el("td", { colspan: "8" }, `加载失败：${err.message}`)));
});
