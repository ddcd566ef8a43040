// The grid worker page (/report): 上报 · 我的上报 · 核查任务, made for a phone in the street.
import { api, toast } from "./api.js";
import { el } from "./dom.js";
import { mountHeader } from "./header.js";
import { connectLive } from "./live.js";
import { createChecks } from "./report-check.js";
import { createMine } from "./report-mine.js";
import { createNewReport } from "./report-new.js";
import { tickDeadlines } from "./report-common.js";
import { ReportQueue } from "./report-queue.js";

const $ = (id) => document.getElementById(id);
const banner = $("queue-banner");
let sentNotice = 0, sentTimer = null;

// -- tabs -----------------------------------------------------------------------------------
const tabs = [...document.querySelectorAll(".tabbar [role=tab]")];
let onTabShown = () => {};

function showTab(tab, focus = false) {
  for (const t of tabs) {
    const selected = t === tab;
    t.setAttribute("aria-selected", String(selected));
    t.tabIndex = selected ? 0 : -1;
    $(t.dataset.panel).hidden = !selected;
  }
  if (focus) tab.focus();
  history.replaceState(null, "", tab.id === "tab-new" ? location.pathname : `${location.pathname}#${tab.id.slice(4)}`);
  window.scrollTo(0, 0);
  onTabShown(tab.id);
}
for (const tab of tabs) {
  tab.addEventListener("click", () => showTab(tab));
  tab.addEventListener("keydown", (event) => {
    const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
    if (step) showTab(tabs[(tabs.indexOf(tab) + step + tabs.length) % tabs.length], true);
  });
}

function badge(id, count, more = false) {
  const node = $(id);
  node.hidden = !count;
  node.textContent = count > 99 ? "99+" : `${count}${more ? "+" : ""}`;
}

// -- the offline banner ---------------------------------------------------------------------
function renderBanner(queue) {
  const waiting = queue.pending.length, failed = queue.failed.length;
  badge("badge-new", waiting + failed);
  const parts = [];
  let kind = "";
  if (waiting) {
    kind = queue.offline ? "offline" : "sending";
    parts.push(el("span", { id: "queue-text" }, queue.offline ? `离线：${waiting} 条上报待发送` : `${waiting} 条上报待发送，正在补发…`),
      queue.offline ? el("button", { type: "button", class: "banner-action", onclick: () => { queue.delay = 2000; queue.flush(); } }, "立即重试") : null);
  } else if (sentNotice) {
    kind = "sent";
    parts.push(el("span", { id: "queue-text" }, `已自动补发 ${sentNotice} 条上报`));
  } else if (queue.offline) {
    kind = "offline";
    parts.push(el("span", { id: "queue-text" }, "当前没有网络：新的上报会先保存在手机上，联网后自动发送"));
  }
  if (failed) parts.push(el("span", { class: "banner-failed" }, `${failed} 条发送失败，请在“我的上报”中处理`));
  banner.hidden = !parts.length;
  banner.className = `queue-banner queue-${kind || "failed"}`;
  banner.replaceChildren(...parts);
}

// -- service worker: start without a network -------------------------------------------------
async function enableOffline(urls) {
  if (!("serviceWorker" in navigator)) return;
  try {
    navigator.serviceWorker.addEventListener("message", (event) => {
      if (event.data && event.data.type === "warmed") document.documentElement.dataset.offlineReady = "true";
    });
    await navigator.serviceWorker.register("/report-sw.js", { scope: "/report" });
    const registration = await navigator.serviceWorker.ready;
    registration.active.postMessage({ type: "warm", urls });
  } catch { /* private mode or an old browser: the page works, just not offline at start */ }
}

// -- start ----------------------------------------------------------------------------------
async function main() {
  const me = await mountHeader("网格上报");
  document.title = `网格上报 · ${me.city.name}`;
  let categories;
  try {
    categories = (await api.get("/api/categories")).items;
  } catch (err) {
    $("panel-new").prepend(el("p", { class: "error-text card" }, `类别加载失败：${err.message}。请检查网络后刷新页面。`));
    categories = [];
  }

  let mine = null;
  const queue = new ReportQueue(me.user.username, {
    onChange: (q) => { renderBanner(q); mine && mine.render(); },
    onSent: (sent) => {
      sentNotice += sent.length;
      clearTimeout(sentTimer);
      sentTimer = setTimeout(() => { sentNotice = 0; renderBanner(queue); }, 15000);
      renderBanner(queue);
      toast(`网络已恢复，已自动补发 ${sent.length} 条上报`, "success");
      for (const { case: c } of sent) mine.add(c);
    },
  });
  mine = createMine({ me, queue, onCount: (n, more) => badge("badge-mine", n, more) });
  const checks = createChecks({ me, onCount: (n) => badge("badge-check", n) });
  const form = await createNewReport({
    me, categories, queue,
    onSubmitted: (c) => mine.add(c),
    onShowMine: () => showTab($("tab-mine")),
  });
  onTabShown = (id) => { if (id === "tab-new") form.invalidate(); };

  await queue.load();
  mine.load();
  checks.load();
  queue.flush();

  const start = { "#mine": "tab-mine", "#check": "tab-check" }[location.hash];
  if (start) showTab($(start));

  connectLive({
    onEvent: (event) => { mine.onEvent(event); checks.onEvent(event); },
    onResync: () => { mine.load(); checks.load(); },
    onStatus: (status) => { if (status === "online" && queue.pending.length) queue.flush(); },
  });
  // Deadlines count down on screen.
  setInterval(() => tickDeadlines(), 30000);

  const scope = encodeURIComponent(me.user.scope);
  enableOffline(["/report", "/api/me", "/api/labels", "/api/categories",
    `/api/jurisdictions.geojson?level=community&within=${scope}`, `/api/jurisdictions.geojson?level=grid&within=${scope}`,
    "/api/cases?mine=true&limit=20", "/api/cases?status=handled&source=grid&limit=100"]);
}

main().catch((err) => {
  document.querySelector("main").prepend(el("p", { class: "error-text card" }, `页面加载失败：${err.message || err}`));
});
