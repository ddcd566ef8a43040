// 上报: category, location (GPS + pin), where it will go, description, photos, submit —
// or, without a network, keep it on the phone for the queue.
import { STATUS_NAMES, api, formatTime, toast } from "./api.js";
import { el } from "./dom.js";
import { currentDeadline, debounce, isNetworkError, newClientId, openSheet, shortName } from "./report-common.js";
import { createLocationMap } from "./report-map.js";
import { createPhotoPicker } from "./report-photos.js";

const KIND_NAMES = { component: "部件", event: "事件" };
const RECENT_MAX = 6;

export async function createNewReport({ me, categories, queue, onSubmitted, onShowMine }) {
  const $ = (id) => document.getElementById(id);
  const form = $("report-form"), done = $("report-done"), submit = $("submit-report"), hint = $("submit-hint");
  const preview = $("route-preview"), description = $("description");
  const choices = categories.filter((c) => c.kind === "component" || c.kind === "event");
  const recentKey = `report.recentCategories.${me.user.username}`;

  let category = null, route = null, routeState = "idle", clientId = newClientId(), submitting = false, map = null;

  // -- category ---------------------------------------------------------------------------
  function recent() {
    try { return JSON.parse(localStorage.getItem(recentKey) || "[]"); } catch { return []; }
  }
  function remember(code) {
    const list = [code, ...recent().filter((c) => c !== code)].slice(0, RECENT_MAX);
    try { localStorage.setItem(recentKey, JSON.stringify(list)); } catch { /* private mode */ }
  }

  function setCategory(c) {
    category = c;
    const value = $("category-value");
    value.className = c ? "picker-value" : "picker-placeholder";
    value.replaceChildren(...(c ? [
      el("span", { class: "picker-name" }, c.name),
      el("span", { class: "picker-meta" }, `${c.code} · ${c.group}${c.priority === "urgent" ? " · 紧急" : ""}`),
    ] : ["请选择问题类别"]));
    routeSoon.cancel();
    routeNow();
  }

  function openPicker() {
    const search = el("input", { type: "search", id: "category-search", class: "sheet-search", placeholder: "搜索类别名称或编码，如“井盖”“S0102”",
      autocomplete: "off", "aria-label": "搜索问题类别" });
    const list = el("div", { class: "category-list", id: "category-list" });
    const sheet = openSheet("选择问题类别", [el("div", { class: "sheet-search-bar" }, search), list]);
    const item = (c) => el("button", {
      type: "button", class: `category-item${category && category.code === c.code ? " selected" : ""}`,
      dataset: { code: c.code }, onclick: () => { setCategory(c); sheet.close(); },
    },
    el("span", { class: "category-name" }, c.name),
    el("span", { class: "category-meta" },
      c.priority === "urgent" ? el("span", { class: "tag tag-urgent" }, "紧急") : null,
      el("span", { class: "category-kind" }, KIND_NAMES[c.kind] || ""),
      el("span", { class: "category-code" }, c.code)));

    function render() {
      const q = search.value.trim().toLowerCase();
      const hits = choices.filter((c) => !q || c.name.toLowerCase().includes(q) || c.code.toLowerCase().includes(q) || (c.group || "").includes(q));
      const groups = new Map();
      if (!q) {
        const recents = recent().map((code) => choices.find((c) => c.code === code)).filter(Boolean);
        if (recents.length) groups.set("最近使用", recents);
      }
      for (const c of hits) {
        if (!groups.has(c.group)) groups.set(c.group, []);
        groups.get(c.group).push(c);
      }
      if (!hits.length) {
        list.replaceChildren(el("div", { class: "empty" }, el("p", { class: "empty-title" }, `没有找到与“${search.value.trim()}”相关的类别`),
          el("p", { class: "muted" }, "可换个说法，或输入类别编码（如 B0101）")));
        return;
      }
      list.replaceChildren(...[...groups].map(([group, items]) => el("section", { class: "category-group" },
        el("h3", { class: "category-group-title" }, group, el("span", { class: "muted" }, ` ${items.length}`)),
        items.map(item))));
    }
    search.addEventListener("input", render);
    render();
    search.focus();
  }
  $("category-button").addEventListener("click", openPicker);

  // -- location and routing ---------------------------------------------------------------
  const [w, s, e, n] = me.city.bounds;
  const inCityBox = ([lng, lat]) => lng >= w && lng <= e && lat >= s && lat <= n;
  let routeSeq = 0;

  async function routeNow() {
    const seq = ++routeSeq;
    const where = map && map.position();
    if (!where) { routeState = "idle"; return renderPreview(); }
    if (!inCityBox(where)) { routeState = "outside"; route = null; return renderPreview(`该位置不在${me.city.name}范围内`); }
    if (!category) { routeState = "need-category"; route = null; return renderPreview(); }
    routeState = "loading";
    renderPreview();
    const params = new URLSearchParams({ lng: where[0], lat: where[1], category: category.code, source: "grid", text: description.value.slice(0, 500) });
    try {
      const decision = await api.get(`/api/route?${params}`);
      if (seq !== routeSeq) return;
      route = decision;
      routeState = "ok";
      renderPreview();
    } catch (err) {
      if (seq !== routeSeq) return;
      route = null;
      routeState = err.code === "outside_city" ? "outside" : isNetworkError(err) ? "offline" : "error";
      renderPreview(err.message);
    }
  }
  const routeSoon = debounce(routeNow, 350);

  function renderPreview(message) {
    const rows = [];
    if (routeState === "need-category") {
      rows.push(el("p", { class: "preview-note" }, "选择问题类别后，这里会显示所在网格和将派往的部门。"));
    } else if (routeState === "loading") {
      rows.push(el("p", { class: "preview-note" }, el("span", { class: "spinner", "aria-hidden": "true" }), "正在判断所在网格和派往部门…"));
    } else if (routeState === "outside") {
      rows.push(el("p", { class: "preview-error", id: "outside-city" }, `${message || "该位置不在城市范围内"}，无法上报。请把图钉拖到${me.city.name}范围内。`));
    } else if (routeState === "offline") {
      rows.push(el("p", { class: "preview-note" }, "当前没有网络，暂时无法判断派往部门。可以照常提交，上报会先保存在手机上，联网后自动发送。"));
    } else if (routeState === "error") {
      rows.push(el("p", { class: "preview-error" }, message || "暂时无法判断派往部门，请稍后重试"));
    } else if (routeState === "ok" && route) {
      const j = route.jurisdiction || {};
      const short = (node, parent) => shortName(node, parent) || "—";
      const cell = (label, level, text, node) => el("div", { class: "preview-cell" }, el("span", { class: "preview-label" }, label),
        el("span", { class: "preview-value", id: `route-${level}`, dataset: { id: node ? node.id : "" }, title: node ? node.name : "" }, text));
      rows.push(el("div", { class: "preview-grid" },
        cell("网格", "grid", short(j.grid, j.community), j.grid), cell("社区", "community", short(j.community, null), j.community),
        cell("街道", "street", short(j.street, null), j.street)));
      rows.push(el("div", { class: "preview-dept", id: "route-department" },
        route.department ? ["将派往 ", el("strong", {}, route.department.name)] : el("strong", {}, "将由指挥中心人工派遣"),
        route.priority === "urgent" ? el("span", { class: "tag tag-urgent" }, "紧急") : null));
      // The rule's id is for administrators; the worker reads "按派遣规则".
      if (route.reason) rows.push(el("p", { class: "preview-reason" }, "依据：", route.reason));
      const ids = [j.district, j.street, j.community, j.grid].filter(Boolean).map((x) => x.id);
      if (me.user.scope !== me.city.id && !ids.includes(me.user.scope)) {
        rows.push(el("p", { class: "preview-warning" }, `该位置不在您的责任区（${me.scope_name}）内，请确认位置是否准确。`));
      }
    }
    preview.className = `route-preview route-${routeState}`;
    preview.replaceChildren(...rows);
    updateSubmit();
  }

  const status = $("gps-status");
  map = await createLocationMap($("report-map"), status, { me, onMove: () => { if (map) routeSoon(); } });
  $("locate-button").addEventListener("click", () => map.locate());
  description.addEventListener("input", () => {
    $("description-count").textContent = `${description.value.length}/2000`;
    if (category) routeSoon();
  });

  // -- photos -----------------------------------------------------------------------------
  const photos = createPhotoPicker({ inputId: "photo-input", onChange: () => updateSubmit() });
  $("photo-slot").append(photos.element);
  $("photo-count-slot").append(photos.count);

  // -- submit -----------------------------------------------------------------------------
  function blocker() {
    if (!category) return "请选择问题类别";
    if (!map.position()) return "请在地图上标出问题位置";
    if (routeState === "outside") return "位置不在城市范围内，无法提交";
    if (photos.errors().length) return "有照片上传失败，请删除后再提交";
    return "";
  }
  function updateSubmit() {
    if (submitting) return;
    const why = blocker();
    submit.disabled = Boolean(why);
    hint.textContent = why;
    hint.className = "submit-hint";
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (submitting || blocker()) return;
    submitting = true;
    submit.disabled = true;
    submit.textContent = "正在提交…";
    hint.textContent = "";
    const body = { category: category.code, description: description.value.trim(),
                   location: { type: "Point", coordinates: map.position() } };
    try {
      if (!navigator.onLine) throw Object.assign(new Error("offline"), { offline: true });
      await photos.settle();
      if (photos.errors().length) throw new Error("有照片上传失败，请删除后再提交");
      const all = photos.photos();
      if (all.some((p) => !p.id)) throw Object.assign(new Error("offline"), { offline: true });
      const created = await api.post("/api/reports", { ...body, photos: all.map((p) => p.id), client_id: clientId });
      remember(category.code);
      showDone(created);
      onSubmitted(created);
      if (queue.pending.length) queue.flush();
    } catch (err) {
      if (err.offline || isNetworkError(err)) {
        await queue.add({
          client_id: clientId, body, photos: photos.photos(),
          category_name: category.name,
          place: route ? [shortName(route.jurisdiction.community), shortName(route.jurisdiction.grid, route.jurisdiction.community)].filter(Boolean).join(" · ") : "",
          department: route && route.department ? route.department.name : "",
        });
        remember(category.code);
        queue.markOffline();
        showQueued();
      } else {
        hint.textContent = err.message;
        hint.className = "submit-hint submit-error";
      }
    } finally {
      submitting = false;
      submit.textContent = "提交上报";
      updateSubmit();
    }
  });

  function reset() {
    clientId = newClientId();
    description.value = "";
    $("description-count").textContent = "0/2000";
    photos.clear();
    setCategory(null);
    done.hidden = true;
    form.hidden = false;
    setTimeout(() => map.invalidate(), 0);
    $("category-button").focus();
  }

  function doneScreen(kind, title, lines, extra) {
    done.replaceChildren(el("div", { class: `done-card card done-${kind}` },
      el("div", { class: "done-icon", "aria-hidden": "true" }),
      el("h2", { id: "done-title", tabindex: "-1" }, title),
      el("dl", { class: "done-facts" }, lines.filter(([, v]) => v).flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])),
      extra,
      el("div", { class: "done-actions" },
        el("button", { type: "button", class: "btn btn-large", id: "report-again", onclick: reset }, "继续上报"),
        el("button", { type: "button", class: "btn btn-secondary btn-large", onclick: () => { reset(); onShowMine(); } }, "查看我的上报"))));
    form.hidden = true;
    done.hidden = false;
    window.scrollTo(0, 0);
    done.querySelector("h2").focus();
  }

  function showDone(c) {
    const dept = (c.assignment && c.assignment.department) || null;
    const due = currentDeadline(c);
    doneScreen("ok", "上报成功", [
      ["案件编号", el("span", { id: "done-number", class: "case-number" }, c.number)],
      ["问题类别", c.category.name],
      ["当前状态", STATUS_NAMES[c.status] || c.status],
      [c.status === "reported" ? "拟派往" : "已派往", dept ? dept.name : "待指挥中心派遣"],
      ["所在网格", c.jurisdiction && c.jurisdiction.grid ? c.jurisdiction.grid.name : null],
      [due ? `${due.stage}时限` : null, due ? formatTime(due.at) : null],
    ], null);
    toast(`上报成功，编号 ${c.number}`, "success");
  }

  function showQueued() {
    doneScreen("queued", "已保存，待网络恢复后自动发送", [
      ["问题类别", category.name],
      ["保存时间", formatTime(new Date().toISOString())],
    ], el("p", { class: "muted done-note" }, "当前没有网络。上报已保存在本机，联网后会自动发送，案件编号在发送成功后生成；可在“我的上报”中查看发送进度。"));
  }

  // First fix: GPS if the phone allows it.
  setCategory(null);
  map.locate({ auto: true });
  return { invalidate: () => map.invalidate() };
}
