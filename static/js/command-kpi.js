// KPI panels from GET /api/stats: the four counts, six closed-loop rates (each with the
// formula the API gives, shown on hover or focus), the status donut and the per-area bars.
// ECharts is loaded as a classic script (global `echarts`).
import { api } from "./api.js";
import { el, fill } from "./dom.js";
import { STATUS_GROUPS } from "./command-model.js";

const COUNTS = [
  { key: "reported", cls: "c-blue" },
  { key: "filed", cls: "c-cyan" },
  { key: "closed", cls: "c-green" },
  { key: "overdue", cls: "c-red" },
];
// Lower is better for 返工率; the others should be high.
const RATES = [
  { key: "close_rate" }, { key: "on_time_close_rate" }, { key: "on_time_handle_rate" },
  { key: "response_rate" }, { key: "satisfaction_rate" }, { key: "rework_rate", lowerIsBetter: true },
];
const NO_BASIS = {
  close_rate: "暂无到期应结案件", on_time_close_rate: "暂无到期应结案件", on_time_handle_rate: "暂无到期应处置案件",
  response_rate: "暂无已到签收时限的派遣", satisfaction_rate: "暂无回访", rework_rate: "暂无处置反馈",
};
const GROUP_TITLES = { district: "各区县案件情况", street: "各街道案件情况", community: "各社区案件情况", department: "各部门案件情况" };
const TEXT = "#cfe3ff", MUTED = "#7f9cc7", GRIDLINE = "rgba(80,140,220,.18)";

function rateColor(value, lowerIsBetter) {
  if (value === null || value === undefined) return "#4a6287";
  const good = lowerIsBetter ? value <= 0.05 : value >= 0.9;
  const fair = lowerIsBetter ? value <= 0.1 : value >= 0.8;
  return good ? "#36cfc9" : fair ? "#fadb14" : "#ff4d4f";
}

function percent(value) {
  if (value === null || value === undefined) return "—";
  const p = value * 100;
  return (p === 100 || p === 0 ? p.toFixed(0) : p.toFixed(1)) + "%";
}

// The server's formulas name a field now and then ("处置时限（handle_by）"): the screen says it
// in words only.
function plainFormula(text) {
  return String(text || "").replace(/（[a-z_]+）/g, "").replace(/\(([a-z_]+)\)/g, "");
}

function formatCount(n) {
  return Number(n || 0).toLocaleString("zh-CN");
}

export function createKpis({ countsBox, ratesBox, statusChartBox, groupChartBox, groupTitle, periodLabel, onError, onGroupClick, subs = {} }) {
  const tooltip = el("div", { class: "kpi-tip", role: "tooltip", id: "kpi-tip", hidden: true });
  document.body.append(tooltip);
  const gauges = new Map();
  let statusChart = null, groupChart = null;
  let lastReport = null;
  let basis = "";  // "统计期：今日 · 范围：上城区 · 不受地图筛选影响"

  function showTip(target, figure) {
    fill(tooltip,
      el("strong", {}, figure.name),
      el("p", {}, plainFormula(figure.formula)),
      figure.denominator !== undefined && figure.denominator !== null
        ? el("p", { class: "kpi-tip-num" }, `本期：${formatCount(figure.numerator)} / ${formatCount(figure.denominator)}`)
        : null,
      basis ? el("p", { class: "kpi-tip-basis" }, basis) : null);
    tooltip.hidden = false;
    const r = target.getBoundingClientRect();
    const top = Math.min(window.innerHeight - tooltip.offsetHeight - 8, r.bottom + 6);
    tooltip.style.left = Math.max(8, Math.min(window.innerWidth - tooltip.offsetWidth - 8, r.left)) + "px";
    tooltip.style.top = Math.max(8, top) + "px";
  }
  function hideTip() { tooltip.hidden = true; }

  function withTip(node, figure) {
    node.tabIndex = 0;
    node.setAttribute("aria-describedby", "kpi-tip");
    node.addEventListener("mouseenter", () => showTip(node, node.figure));
    node.addEventListener("focus", () => showTip(node, node.figure));
    node.addEventListener("mouseleave", hideTip);
    node.addEventListener("blur", hideTip);
    node.figure = figure;
    return node;
  }

  function renderCounts(kpis) {
    const openOverdue = kpis.open_overdue;
    const existing = countsBox.querySelectorAll(".count");
    if (existing.length !== COUNTS.length) {
      countsBox.replaceChildren(...COUNTS.map(({ key, cls }) => withTip(el("div", { class: `count ${cls}`, dataset: { kpi: key } },
        el("span", { class: "count-label" }, kpis[key].name),
        el("span", { class: "count-value" }),
        el("span", { class: "count-sub" })), kpis[key])));
    }
    for (const node of countsBox.querySelectorAll(".count")) {
      const figure = kpis[node.dataset.kpi];
      node.figure = figure;
      const value = node.querySelector(".count-value");
      const text = formatCount(figure.value);
      if (value.textContent !== text) {
        value.textContent = text;
        node.classList.remove("bump");
        void node.offsetWidth; // restart the animation
        node.classList.add("bump");
      }
      const sub = node.querySelector(".count-sub");
      sub.textContent = node.dataset.kpi === "overdue" && openOverdue
        ? `当前在办超期 ${formatCount(openOverdue.value)} 件` : node.dataset.kpi === "closed" && kpis.due && kpis.due.value
          ? `应结案 ${formatCount(kpis.due.value)} 件` : "\u00a0";
    }
  }

  // The percentage is sized to the gauge (a 1366×768 screen has short gauges: a fixed 17 px
  // figure ran into the label below).
  function gaugeOption(value, lowerIsBetter, height = 80) {
    const color = rateColor(value, lowerIsBetter);
    return {
      animationDuration: 600,
      series: [{
        type: "gauge", startAngle: 220, endAngle: -40, min: 0, max: 100, radius: "96%", center: ["50%", "56%"],
        progress: { show: true, width: 7, roundCap: true, itemStyle: { color } },
        axisLine: { roundCap: true, lineStyle: { width: 7, color: [[1, "rgba(70,120,200,.22)"]] } },
        axisTick: { show: false }, splitLine: { show: false }, axisLabel: { show: false }, pointer: { show: false },
        anchor: { show: false }, title: { show: false },
        detail: {
          valueAnimation: true, offsetCenter: [0, "4%"], fontSize: Math.max(12, Math.min(17, Math.round(height * 0.22))), fontWeight: 700, color: value === null ? MUTED : TEXT,
          fontFamily: "DIN Alternate, Bahnschrift, Roboto Condensed, Arial Narrow, sans-serif",
          formatter: () => percent(value),
        },
        data: [{ value: value === null || value === undefined ? 0 : Math.round(value * 1000) / 10 }],
      }],
    };
  }

  function renderRates(kpis) {
    if (!ratesBox.children.length || !ratesBox.querySelector(".rate")) {
      ratesBox.replaceChildren(...RATES.map(({ key }) => withTip(el("div", { class: "rate", dataset: { kpi: key } },
        el("div", { class: "rate-gauge" }),
        el("div", { class: "rate-label" }, kpis[key].name),
        el("div", { class: "rate-note" })), kpis[key])));
    }
    for (const node of ratesBox.querySelectorAll(".rate")) {
      const spec = RATES.find((r) => r.key === node.dataset.kpi);
      const figure = kpis[spec.key];
      node.figure = figure;
      node.setAttribute("aria-label", `${figure.name} ${percent(figure.value)}`);
      node.querySelector(".rate-note").textContent = figure.value === null ? NO_BASIS[spec.key]
        : `${formatCount(figure.numerator)} / ${formatCount(figure.denominator)}`;
      let chart = gauges.get(spec.key);
      if (!chart) {
        chart = echarts.init(node.querySelector(".rate-gauge"), null, { renderer: "canvas" });
        gauges.set(spec.key, chart);
      }
      chart.setOption(gaugeOption(figure.value, spec.lowerIsBetter, node.querySelector(".rate-gauge").clientHeight));
    }
  }

  function renderStatus(total) {
    const byStatus = total.by_status || {};
    const data = STATUS_GROUPS.map((g) => ({
      name: g.name, value: g.statuses.reduce((n, s) => n + (byStatus[s] || 0), 0), itemStyle: { color: g.color },
    }));
    const voided = (byStatus.void || 0) + (byStatus.merged || 0);
    if (voided) data.push({ name: "作废/并案", value: voided, itemStyle: { color: "#434f63" } });
    const sum = data.reduce((n, d) => n + d.value, 0);
    statusChart = statusChart || echarts.init(statusChartBox);
    statusChart.setOption({
      tooltip: { trigger: "item", formatter: "{b}：{c} 件（{d}%）", backgroundColor: "#0b2350", borderColor: "#2f6fb8", textStyle: { color: TEXT } },
      legend: { orient: "vertical", left: "52%", top: "middle", itemWidth: 10, itemHeight: 10, itemGap: 8,
                textStyle: { color: TEXT, fontSize: 13, rich: { n: { color: "#fff", fontWeight: 700, width: 40, align: "right" } } },
                formatter: (name) => `${name}  {n|${formatCount((data.find((d) => d.name === name) || {}).value)}}` },
      title: { text: formatCount(sum), subtext: "件", left: "24%", top: "38%", textAlign: "center",
               textStyle: { color: "#fff", fontSize: 22, fontWeight: 700 }, subtextStyle: { color: MUTED, fontSize: 12 }, itemGap: 2 },
      series: [{ type: "pie", radius: ["58%", "84%"], center: ["24%", "50%"], avoidLabelOverlap: true,
                 label: { show: false }, itemStyle: { borderColor: "#071a3d", borderWidth: 2 }, data }],
    }, true);
    statusChartBox.setAttribute("aria-label", "案件状态分布：" + data.map((d) => `${d.name}${d.value}件`).join("，"));
  }

  // One row per area or department with anything to show (a department with nothing in the
  // period takes no row); each bar carries its own number: 上报 and 结案 are counted on
  // different cases (a case reported last week may close today), so neither caps the other.
  function renderGroups(report) {
    const kpi = (row, key) => (row.kpis.find((k) => k.key === key) || {}).value || 0;
    const rows = report.rows
      .map((r) => ({ id: r.group.id, name: r.group.id === null && report.group_by !== "department" ? "待补充定位" : r.group.name,
                     reported: kpi(r, "reported"), closed: kpi(r, "closed"), overdue: kpi(r, "overdue") }))
      .filter((r) => r.reported || r.closed || r.overdue)
      .sort((a, b) => b.reported - a.reported || b.closed - a.closed || a.name.localeCompare(b.name, "zh-CN"))
      .slice(0, Math.max(3, Math.min(10, Math.floor((groupChartBox.clientHeight - 44) / 30))))
      .reverse();
    groupTitle.textContent = GROUP_TITLES[report.group_by] || "案件情况";
    groupChartBox.dataset.rows = String(rows.length);
    groupChart = groupChart || echarts.init(groupChartBox);
    if (!rows.length) {
      groupChart.setOption({ title: { text: "统计期内暂无案件", left: "center", top: "middle", textStyle: { color: MUTED, fontSize: 14, fontWeight: 400 } } }, true);
      return;
    }
    groupChart.off("click");
    groupChart.on("click", (p) => { const r = rows[p.dataIndex]; if (r && r.id && onGroupClick) onGroupClick(r.id, report.group_by, r.name); });
    const short = (name) => (name.length > 8 ? name.slice(0, 7) + "…" : name);
    const barLabel = (key) => ({ show: true, position: "right", color: TEXT, fontSize: 12,
      formatter: (p) => (key === "reported" && rows[p.dataIndex].overdue ? `${p.value} {o|超期${rows[p.dataIndex].overdue}}` : `${p.value}`),
      rich: { o: { color: "#ff7875", fontSize: 12, padding: [0, 0, 0, 2] } } });
    groupChart.setOption({
      tooltip: {
        trigger: "axis", axisPointer: { type: "shadow" }, backgroundColor: "#0b2350", borderColor: "#2f6fb8", textStyle: { color: TEXT },
        // A node, not a string: ECharts puts a returned string into the tooltip as HTML.
        formatter: (items) => {
          const r = rows[items[0].dataIndex];
          return el("div", {}, el("div", {}, r.name),
            `上报 ${formatCount(r.reported)} 件 · 结案 ${formatCount(r.closed)} 件 · 超期 ${formatCount(r.overdue)} 件`);
        },
      },
      legend: { top: 0, right: 0, itemWidth: 10, itemHeight: 8, textStyle: { color: MUTED, fontSize: 12 }, data: ["上报", "结案"] },
      grid: { left: 4, right: 72, top: 22, bottom: 2, containLabel: true },
      xAxis: { type: "value", minInterval: 1, splitNumber: 3, splitLine: { lineStyle: { color: GRIDLINE } }, axisLabel: { color: MUTED, fontSize: 11 } },
      yAxis: { type: "category", data: rows.map((r) => r.name), axisLabel: { color: TEXT, fontSize: 13, formatter: short },
               axisLine: { lineStyle: { color: GRIDLINE } }, axisTick: { show: false }, triggerEvent: true },
      series: [
        { name: "上报", type: "bar", data: rows.map((r) => r.reported), barMaxWidth: 9, barGap: "30%", cursor: "pointer",
          itemStyle: { color: new echarts.graphic.LinearGradient(0, 0, 1, 0, [{ offset: 0, color: "rgba(29,79,168,.7)" }, { offset: 1, color: "#40a9ff" }]), borderRadius: [0, 3, 3, 0] },
          label: barLabel("reported") },
        { name: "结案", type: "bar", data: rows.map((r) => r.closed), barMaxWidth: 9, cursor: "pointer",
          itemStyle: { color: "#36cfc9", borderRadius: [0, 3, 3, 0] }, label: barLabel("closed") },
      ],
    }, true);
  }

  async function refresh({ since, until, groupBy, periodText, scope }) {
    const query = new URLSearchParams({ from: since, to: until, group_by: groupBy, top: "0" });
    if (scope) query.set("scope", scope);
    try {
      const report = await api.get(`/api/stats?${query}`);
      lastReport = report;
      const kpis = Object.fromEntries(report.total.kpis.map((k) => [k.key, k]));
      const scopeName = (report.scope || {}).name || "";
      basis = `统计期：${periodText} · 范围：${scopeName}（全部类别、全部部门，含未定位案件；不随地图筛选变化）`;
      periodLabel.textContent = `统计期：${periodText} · ${scopeName} · ${report.generated_at.slice(11, 16)} 更新`;
      periodLabel.title = basis;
      // Each panel says what it counts: the period, the area, and that it includes every case
      // (the map shows only located ones, so its numbers may be smaller).
      if (subs.group) subs.group.textContent = `${periodText}上报 / 结案 / 超期 · ${scopeName} · 含未定位案件`;
      if (subs.status) {
        // The panel also shows the trend and top types (command-trend.js): its basis line says
        // the status chart's only while that tab is shown.
        subs.status.dataset.basis = `${periodText}上报的案件，按当前状态 · ${scopeName} · 全部类别`;
        if ((subs.status.dataset.tab || "status") === "status") subs.status.textContent = subs.status.dataset.basis;
      }
      if (subs.rates) subs.rates.textContent = `${periodText} · ${scopeName} · 鼠标移到指标上查看计算口径`;
      for (const node of Object.values(subs)) if (node) node.title = node.textContent;
      renderCounts(kpis);
      renderRates(kpis);
      renderStatus(report.total);
      renderGroups(report);
      return report;
    } catch (err) {
      if (!lastReport) countsBox.replaceChildren(el("p", { class: "panel-empty error" }, `统计数据暂时无法获取：${err.message}。稍后将自动重试。`));
      periodLabel.textContent = `统计数据更新失败，稍后自动重试`;
      if (onError) onError(err);
      return null;
    }
  }

  function resize() {
    for (const chart of [...gauges.values(), statusChart, groupChart]) if (chart) chart.resize();
  }

  return { refresh, resize, value: (key) => lastReport && (lastReport.total.kpis.find((k) => k.key === key) || {}).value };
}

