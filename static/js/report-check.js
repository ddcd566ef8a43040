// 核查任务: grid cases a department reported as handled; the worker checks them on site and
// passes them or sends them back for rework (返工).
import { api, formatTime, toast } from "./api.js";
import { el } from "./dom.js";
import { deadlineBadge, departmentOf, emptyState, loadingState, photoStrip, placeOf } from "./report-common.js";
import { openCaseDetail } from "./report-detail.js";
import { createPhotoPicker } from "./report-photos.js";

const QUERY = "/api/cases?status=handled&source=grid&limit=100";

function lastFeedback(c) {
  const entry = [...(c.history || [])].reverse().find((h) => h.action === "feedback");
  if (entry) return { text: entry.result || entry.note, photos: entry.photos || [], at: entry.at };
  return c.result ? { text: c.result.text, photos: c.result.photos || [], at: c.result.at } : null;
}

// 上报时 | 处置后, side by side: what the worker compares on site.
function beforeAfter(c, feedback) {
  const before = c.photos || [], after = feedback ? feedback.photos || [] : [];
  if (!before.length && !after.length) return null;
  const side = (title, ids, label, empty) => el("figure", { class: "compare-side" },
    el("figcaption", {}, title), ids.length ? photoStrip(ids, label) : el("p", { class: "muted compare-none" }, empty));
  return el("div", { class: "compare", role: "group", "aria-label": "处置前后照片对比" },
    side("上报时", before, "上报照片", "上报时未拍照"),
    side("处置后", after, "处置照片", "部门未上传处置照片"));
}

// The phone's map app at the case's point: Android's geo: intent, elsewhere 高德's marker page
// (which hands over to the app when installed). Coordinates are WGS84, as the case stores them.
function openInMapApp(c) {
  const [lng, lat] = c.location.coordinates;
  const url = /Android/i.test(navigator.userAgent)
    ? `geo:${lat},${lng}?q=${lat},${lng}(${encodeURIComponent(c.number)})`
    : `https://uri.amap.com/marker?position=${lng},${lat}&name=${encodeURIComponent(c.number)}&coordinate=wgs84&callnative=1`;
  window.open(url, "_blank", "noopener");
}

export function createChecks({ me, onCount }) {
  const list = document.getElementById("check-list");
  let cases = [], state = "loading", error = "";
  const open = new Map();  // case id → the open check form's element (kept across renders)

  async function load() {
    if (!cases.length) { state = "loading"; render(); }
    try {
      cases = (await api.get(QUERY)).items;
      state = "ready";
    } catch (err) {
      error = err.message;
      state = cases.length ? "ready" : "error";
    }
    render();
  }
  document.getElementById("check-refresh").addEventListener("click", load);

  function checkForm(c, passed) {
    const noteId = `check-note-${c.id}`;
    const note = el("textarea", { id: noteId, rows: 3, maxlength: 500, class: "check-note",
      placeholder: passed ? "核查意见（选填），如：现场已清理干净" : "请写明需要返工的原因（必填），如：垃圾仍未清运" });
    const photos = createPhotoPicker({ inputId: `check-photo-${c.id}`, max: 3, label: "核查照片" });
    const message = el("p", { class: "error-text", role: "alert" });
    const confirmButton = el("button", { type: "button", class: `btn ${passed ? "btn-ok" : "btn-danger"} check-confirm` }, passed ? "确认通过" : "确认退回返工");
    const form = el("div", { class: `check-form ${passed ? "check-pass" : "check-fail"}` },
      el("h4", {}, passed ? "核查通过" : "核查不通过（返工）"),
      el("label", { for: noteId }, passed ? "核查意见" : "返工原因"), note,
      el("div", { class: "field-label" }, el("span", {}, "现场照片（选填）"), photos.count), photos.element,
      message,
      el("div", { class: "check-buttons" },
        el("button", { type: "button", class: "btn btn-secondary", onclick: () => { open.delete(c.id); render(); } }, "取消"),
        confirmButton));
    confirmButton.addEventListener("click", async () => {
      message.textContent = "";
      const text = note.value.trim();
      if (!passed && !text) { message.textContent = "请填写需要返工的原因"; note.focus(); return; }
      confirmButton.disabled = true;
      confirmButton.textContent = "正在提交…";
      try {
        await photos.settle();
        const items = photos.photos();
        if (photos.errors().length) throw new Error("有照片上传失败，请删除后再提交");
        if (items.some((p) => !p.id)) throw new Error("当前没有网络，照片无法上传，请联网后再提交核查结果");
        const body = { passed, photos: items.map((p) => p.id), version: c.version };
        if (text) body.note = text;
        await api.action(c.id, "check", body);
        toast(passed ? `案件 ${c.number} 核查通过` : `案件 ${c.number} 已退回返工`, "success");
        open.delete(c.id);
        cases = cases.filter((x) => x.id !== c.id);
        render();
      } catch (err) {
        message.textContent = err.status === 409 ? `${err.message}（案件可能已被他人处理，已刷新）` : err.message;
        if (err.status === 409 || err.status === 404) load();
      } finally {
        confirmButton.disabled = false;
        confirmButton.textContent = passed ? "确认通过" : "确认退回返工";
      }
    });
    setTimeout(() => note.focus(), 0);
    return form;
  }

  function task(c) {
    const feedback = lastFeedback(c);
    const holder = el("div", { class: "check-form-slot" });
    if (open.has(c.id)) holder.append(open.get(c.id));
    const start = (passed) => { open.set(c.id, checkForm(c, passed)); render(); };
    return el("article", { class: "case-item check-task", dataset: { caseId: c.id } },
      el("button", { type: "button", class: "task-head", onclick: () => openCaseDetail(c.id, me), "aria-label": `查看案件 ${c.number} 详情` },
        el("span", { class: "case-row" }, el("span", { class: "case-number" }, c.number), deadlineBadge(c)),
        el("span", { class: "case-title" }, c.category.name, c.priority === "urgent" ? el("span", { class: "tag tag-urgent" }, "紧急") : null),
        el("span", { class: "case-line muted" }, placeOf(c)),
        c.description ? el("span", { class: "case-line" }, "问题描述：", c.description) : null),
      el("div", { class: "feedback" },
        el("div", { class: "feedback-head" }, el("strong", {}, departmentOf(c) || "处置部门"), " 反馈",
          feedback ? el("span", { class: "muted" }, ` · ${formatTime(feedback.at)}`) : null),
        el("p", { class: "feedback-text" }, feedback ? feedback.text : "（部门未填写处置结果）"),
        beforeAfter(c, feedback)),
      c.location ? el("button", { type: "button", class: "btn btn-secondary btn-map-app", onclick: () => openInMapApp(c) }, "在地图应用中打开位置（导航到现场）") : null,
      open.has(c.id) ? holder : el("div", { class: "check-buttons" },
        el("button", { type: "button", class: "btn btn-danger-outline check-fail-button", onclick: () => start(false) }, "不通过（返工）"),
        el("button", { type: "button", class: "btn btn-ok check-pass-button", onclick: () => start(true) }, "核查通过")));
  }

  function render() {
    let children;
    if (state === "loading") children = [loadingState()];
    else if (state === "error") children = [el("p", { class: "error-text" }, `加载失败：${error}`)];
    else if (!cases.length) children = [emptyState("暂无待核查任务", "部门反馈办结的案件会自动出现在这里，请到现场核查后确认。")];
    else children = cases.map(task);
    list.replaceChildren(...children);
    onCount(cases.length);
  }

  async function refreshCase(id) {
    try {
      const c = await api.get(`/api/cases/${encodeURIComponent(id)}`);
      const i = cases.findIndex((x) => x.id === id);
      const wanted = c.status === "handled" && c.source === "grid";
      if (wanted && i >= 0) cases[i] = c;
      else if (wanted) cases.unshift(c);
      else if (i >= 0) { cases.splice(i, 1); open.delete(id); }
      else return;
      render();
    } catch { /* offline: the next load settles it */ }
  }

  return {
    load,
    onEvent(event) {
      const props = event.case.properties || {};
      const id = event.case.id || props.id;
      if (props.source && props.source !== "grid") return;
      if (props.status === "handled" || cases.some((x) => x.id === id)) refreshCase(id);
    },
  };
}
