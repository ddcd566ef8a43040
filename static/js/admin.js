// 系统管理: accounts, and every kind of the city configuration (departments, categories,
// routing rules, zones, door plates, calendar) with its version history; the knowledge base.
// Each editor is a module that draws into the right-hand card; the hash (#rules) keeps the
// place on reload.
import { toast } from "./api.js";
import { el } from "./dom.js";
import { mountHeader } from "./header.js";
import { watchVersion } from "./admin-common.js";
import { renderUsers } from "./admin-users.js";
import { renderCalendar, renderCategories, renderDepartments } from "./admin-tables.js";
import { renderRules } from "./admin-rules.js";
import { renderAddresses, renderZones } from "./admin-geo.js";
import { renderHistory } from "./admin-history.js";
import { renderKnowledge } from "./admin-knowledge.js";

const SECTIONS = [
  { id: "users", label: "账号", render: renderUsers },
  { id: "departments", label: "部门", render: renderDepartments },
  { id: "categories", label: "事件分类与时限", render: renderCategories },
  { id: "rules", label: "派遣规则", render: renderRules },
  { id: "zones", label: "区域与辖区", render: renderZones },
  { id: "addresses", label: "门牌地址", render: renderAddresses },
  { id: "calendar", label: "节假日与工作时间", render: renderCalendar },
  { id: "knowledge", label: "知识库", render: renderKnowledge },
  { id: "history", label: "版本历史与回滚", render: renderHistory },
];

const body = document.getElementById("admin-body");
const tabs = document.getElementById("admin-tabs");
const versionLine = document.getElementById("admin-version");
let me = null;

watchVersion((version) => { versionLine.textContent = `城市配置当前为第 ${version} 版`; });

async function show(id) {
  const section = SECTIONS.find((s) => s.id === id) || SECTIONS[0];
  for (const button of tabs.children) button.setAttribute("aria-selected", String(button.dataset.section === section.id));
  if (location.hash !== `#${section.id}`) history.replaceState(null, "", `#${section.id}`);
  // The editor draws into a holder already on the page: a map needs its size to start.
  const loading = el("p", { class: "empty" }, "正在加载…");
  const holder = el("div", {}, loading);
  body.replaceChildren(holder);
  try {
    await section.render(holder, { me, reload: () => show(section.id), show });
    loading.remove();
  } catch (err) {
    body.replaceChildren(el("div", { class: "problems", role: "alert" }, err.message || String(err)));
    toast(err.message || String(err), "error");
  }
}

async function main() {
  me = await mountHeader("系统管理");
  tabs.replaceChildren(...SECTIONS.map((s) => el("button", {
    type: "button", role: "tab", dataset: { section: s.id }, onclick: () => show(s.id),
  }, s.label)));
  window.addEventListener("hashchange", () => show(location.hash.slice(1)));
  await show(location.hash.slice(1) || "users");
}

main();
