// 我的上报: what waits on the phone (offline queue) and what the server has, kept live.
import { api, formatTime } from "./api.js";
import { el } from "./dom.js";
import { deadlineBadge, departmentOf, dispatchLabel, emptyState, loadingState, statusTag } from "./report-common.js";
import { openCaseDetail } from "./report-detail.js";

const PAGE = 20;

export function createMine({ me, queue, onCount }) {
  const list = document.getElementById("mine-list");
  const more = document.getElementById("mine-more");
  let cases = [], next = null, state = "loading", error = "";

  async function load() {
    state = cases.length ? state : "loading";
    render();
    try {
      const page = await api.get(`/api/cases?mine=true&limit=${PAGE}`);
      cases = page.items;
      next = page.next;
      state = "ready";
    } catch (err) {
      error = err.message;
      state = cases.length ? "ready" : "error";
    }
    render();
  }

  async function loadMore() {
    more.disabled = true;
    try {
      const page = await api.get(`/api/cases?mine=true&limit=${PAGE}&cursor=${encodeURIComponent(next)}`);
      const known = new Set(cases.map((c) => c.id));
      cases = cases.concat(page.items.filter((c) => !known.has(c.id)));
      next = page.next;
    } catch (err) {
      error = err.message;
    } finally {
      more.disabled = false;
    }
    render();
  }
  more.addEventListener("click", loadMore);
  document.getElementById("mine-refresh").addEventListener("click", load);

  function queuedItem(item) {
    const failed = item.state === "failed";
    return el("div", { class: `case-item queued${failed ? " failed" : ""}`, dataset: { clientId: item.client_id } },
      el("span", { class: "case-row" },
        el("span", { class: "case-number muted" }, "编号待生成"),
        el("span", { class: `tag ${failed ? "level-overdue" : "status-queued"}` }, failed ? "发送失败" : queue.offline ? "待发送（离线）" : "待发送")),
      el("span", { class: "case-title" }, item.category_name),
      item.body.description ? el("span", { class: "case-line" }, item.body.description) : null,
      item.place || item.department ? el("span", { class: "case-line muted" }, [item.place, item.department && `拟派往 ${item.department}`].filter(Boolean).join(" · ")) : null,
      el("span", { class: "case-line muted" }, `保存于 ${formatTime(item.saved_at)}`, item.photos.length ? ` · ${item.photos.length} 张照片` : ""),
      failed ? el("span", { class: "case-line bad-text" }, item.error) : null,
      failed ? el("span", { class: "case-actions" },
        el("button", { type: "button", class: "btn btn-secondary", onclick: () => queue.retry(item.client_id) }, "重新发送"),
        el("button", { type: "button", class: "btn btn-secondary btn-danger-outline", onclick: () => confirmRemove(item) }, "删除")) : null);
  }

  function confirmRemove(item) {
    if (confirm(`删除这条未发送的上报（${item.category_name}）？删除后无法恢复。`)) queue.remove(item.client_id);
  }

  function caseItem(c) {
    const dept = departmentOf(c);
    return el("button", { type: "button", class: "case-item", dataset: { caseId: c.id }, onclick: () => openCaseDetail(c.id, me) },
      el("span", { class: "case-row" }, el("span", { class: "case-number" }, c.number), statusTag(c.status)),
      el("span", { class: "case-title" }, c.category.name, c.priority === "urgent" ? el("span", { class: "tag tag-urgent" }, "紧急") : null),
      el("span", { class: "case-line" }, dept ? `${dispatchLabel(c)} ${dept}` : "待指挥中心派遣"),
      c.place && c.place.text ? el("span", { class: "case-line muted case-place" }, c.place.text) : null,
      el("span", { class: "case-row case-foot" }, el("span", { class: "muted" }, formatTime(c.created_at)), deadlineBadge(c)));
  }

  function render() {
    const queued = queue.items;
    const children = queued.map(queuedItem);
    if (state === "loading" && !cases.length) children.push(loadingState());
    else if (state === "error") children.push(el("p", { class: "error-text" }, `加载失败：${error}`));
    else if (!cases.length && !queued.length) children.push(emptyState("还没有上报记录", "在“上报”页选择问题类别、标出位置并拍照，即可上报。"));
    children.push(...cases.map(caseItem));
    list.replaceChildren(...children);
    more.hidden = !next;
    onCount(cases.length + queued.length, Boolean(next));
  }

  async function refreshCase(id) {
    try {
      const c = await api.get(`/api/cases/${encodeURIComponent(id)}`);
      const i = cases.findIndex((x) => x.id === id);
      if (i >= 0) cases[i] = c;
      else if ((c.reporters || []).includes(me.user.username)) cases.unshift(c);
      else return;
      render();
    } catch { /* gone from scope or offline: the next full load settles it */ }
  }

  return {
    load,
    render,
    add(c) {
      if (!cases.some((x) => x.id === c.id)) cases.unshift(c);
      render();
    },
    onEvent(event) {
      const id = event.case.id || (event.case.properties || {}).id;
      if (cases.some((x) => x.id === id) || event.type === "case.created") refreshCase(id);
    },
  };
}
