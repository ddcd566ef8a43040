// The analysis panel's other two tabs: cases per day over 30 days (reported / closed) and the
// problem types reported most, from GET /api/stats/trend for the scope in view. Unlike the KPIs
// these follow the category and department filters, and the basis line says so.
import { api } from "./api.js";
import { el } from "./dom.js";

const TEXT = "#cfe3ff", MUTED = "#8aa6cf", GRIDLINE = "rgba(80,140,220,.18)";
const TABS = { "tab-status": "status-chart", "tab-trend": "trend-chart", "tab-top": "top-types" };
const REASK_MS = 5 * 60 * 1000;

export function createAnalysis({ tabsBox, basis, trendBox, topBox, onShowStatus }) {
  let chart = null, last = null, shown = "tab-status", context = { scopeName: "", filterText: "" };
  const tabs = [...tabsBox.querySelectorAll("[role=tab]")];

  function basisText() {
    if (shown === "tab-status") return basis.dataset.basis || basis.textContent;
    const what = shown === "tab-trend" ? "近30天每日上报 / 结案" : "近30天上报最多的问题类型";
    return `${what} · ${context.scopeName}${context.filterText ? ` · ${context.filterText}` : " · 全部类别"}（含未定位案件）`;
  }

  function show(id) {
    shown = id;
    for (const tab of tabs) {
      const on = tab.id === id;
      tab.setAttribute("aria-selected", on ? "true" : "false");
      tab.tabIndex = on ? 0 : -1;
      document.getElementById(TABS[tab.id]).hidden = !on;
    }
    basis.dataset.tab = id.slice(4);
    basis.textContent = basisText();
    basis.title = basis.textContent;
    if (id === "tab-status") onShowStatus();
    else draw();
  }
  for (const tab of tabs) tab.addEventListener("click", () => show(tab.id));
  tabsBox.addEventListener("keydown", (e) => {
    const step = { ArrowRight: 1, ArrowLeft: -1 }[e.key];
    if (!step) return;
    const i = (tabs.findIndex((t) => t.id === shown) + step + tabs.length) % tabs.length;
    show(tabs[i].id);
    tabs[i].focus();
  });

  function drawTrend() {
    chart = chart || echarts.init(trendBox);
    chart.resize();
    const days = last.days;
    chart.setOption({
      tooltip: { trigger: "axis", backgroundColor: "#0b2350", borderColor: "#2f6fb8", textStyle: { color: TEXT } },
      legend: { top: 0, right: 0, itemWidth: 12, itemHeight: 8, textStyle: { color: MUTED, fontSize: 12 }, data: ["上报", "结案"] },
      grid: { left: 4, right: 8, top: 24, bottom: 2, containLabel: true },
      xAxis: { type: "category", data: days.map((d) => d.day.slice(5).replace("-", "/")), boundaryGap: false,
               axisLabel: { color: MUTED, fontSize: 11, interval: Math.ceil(days.length / 6) - 1 }, axisLine: { lineStyle: { color: GRIDLINE } } },
      yAxis: { type: "value", minInterval: 1, splitNumber: 3, splitLine: { lineStyle: { color: GRIDLINE } }, axisLabel: { color: MUTED, fontSize: 11 } },
      series: [
        { name: "上报", type: "line", smooth: true, symbol: "none", data: days.map((d) => d.reported), lineStyle: { color: "#40a9ff", width: 2 },
          areaStyle: { color: "rgba(64,169,255,.15)" }, itemStyle: { color: "#40a9ff" } },
        { name: "结案", type: "line", smooth: true, symbol: "none", data: days.map((d) => d.closed), lineStyle: { color: "#36cfc9", width: 2 },
          itemStyle: { color: "#36cfc9" } },
      ],
    }, true);
    const total = days.reduce((n, d) => n + d.reported, 0), closed = days.reduce((n, d) => n + d.closed, 0);
    trendBox.setAttribute("aria-label", `近30天共上报 ${total} 件，结案 ${closed} 件`);
    trendBox.dataset.reported = String(total);
  }

  function drawTop() {
    const items = last.top_categories;
    if (!items.length) { topBox.replaceChildren(el("li", { class: "panel-empty" }, "近30天暂无上报")); return; }
    const most = items[0].count;
    topBox.replaceChildren(...items.map((t, i) => el("li", { class: "top-type", dataset: { code: t.code } },
      el("span", { class: "top-rank" }, String(i + 1)),
      el("span", { class: "top-name" }, t.name),
      el("span", { class: "top-bar", "aria-hidden": "true" }, el("i", { class: `top-fill w${Math.max(1, Math.round((t.count / most) * 10))}` })),
      el("span", { class: "top-count" }, `${t.count.toLocaleString("zh-CN")} 件`))));
  }

  function draw() {
    basis.textContent = basisText();
    basis.title = basis.textContent;
    if (!last) return;
    if (shown === "tab-trend") drawTrend();
    if (shown === "tab-top") drawTop();
  }

  // Thirty days move slowly: the same question is asked again only after five minutes (the
  // KPIs refresh every 30 s; a new scope or filter asks at once).
  let asked = "", askedAt = 0;
  async function refresh({ scope, scopeName, category, department, filterText }) {
    const query = new URLSearchParams({ days: "30" });
    if (scope) query.set("scope", scope);
    if (category) query.set("category", category);
    if (department) query.set("department", department);
    context = { scopeName, filterText };
    if (String(query) === asked && Date.now() - askedAt < REASK_MS) { draw(); return last; }
    asked = String(query);
    askedAt = Date.now();
    try {
      last = await api.get(`/api/stats/trend?${query}`);
      context.scopeName = last.scope.name;
      draw();
      return last;
    } catch {
      asked = "";  // the panel keeps what it had; the next refresh tries again
      return null;
    }
  }

  return { refresh, resize: () => chart && chart.resize(), shown: () => shown };
}
