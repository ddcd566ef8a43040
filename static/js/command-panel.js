// The case drawer: details, history and the actions this user may take (派遣, 督办, 吹哨, 结案…),
// drawn by the shared case-detail module; kept current by the live feed.
import { ApiError, api, toast } from "./api.js";
import { el } from "./dom.js";
import { renderCaseDetail } from "./case-detail.js";
import { callerReveal } from "./caller-reveal.js";
import { availableActions, doneText, runAction } from "./command-actions.js";
import { jointPanel } from "./joint.js";

export function createPanel({ drawer, body, closeButton, me, directory, map, onChanged }) {
  let current = null;   // the case document shown
  let handle = null;    // renderCaseDetail's {destroy, tick}
  let returnFocus = null;
  let loading = 0;

  function isOpen() { return !drawer.hidden; }

  function show(caseDoc) {
    if (handle) handle.destroy();
    current = caseDoc;
    const actions = availableActions(caseDoc);
    handle = renderCaseDetail(body, caseDoc, { actions, onAction: (action) => perform(action), map: false });
    const reveal = callerReveal(caseDoc);  // only where the city lets this role unmask (auth.reveal_roles)
    if (reveal) body.querySelector(".cd-facts").after(reveal);
    // 主办/协办 parts and 退单待审 with their buttons (approve_return / reject_return).
    const joint = jointPanel(caseDoc, { onUpdated: (updated) => { onChanged(updated); show(updated); } });
    if (joint) body.querySelector(".cd-head").after(joint);
    if (!actions.length && !joint) {
      const note = me.user.role === "commander" ? "该案件当前无需指挥长操作；在办案件可督办或吹哨。"
        : me.user.role === "dispatcher" ? "该案件已办结，无可执行的操作。" : "您可以查看案件详情，办理操作由指挥中心派遣员执行。";
      body.querySelector(".cd-head").after(el("p", { class: "cd-readonly" }, note));
    }
  }

  async function perform(action) {
    if (!current) return;
    const caseDoc = current;
    const buttons = body.querySelectorAll(".cd-actions button");
    for (const b of buttons) b.disabled = true;
    try {
      const updated = await runAction(action, caseDoc, { directory, pickLocation });
      if (updated) {
        toast(`${updated.number} ${doneText(action)}`, "success");
        onChanged(updated);
        if (current && current.id === updated.id) show(updated);
      }
    } catch (err) {
      if (err instanceof ApiError && (err.code === "transition_not_allowed" || err.code === "version_conflict")) {
        // Someone moved the case meanwhile: the fresh document brings the actions still open.
        toast(`${err.message}，已刷新可执行的操作`, "error");
        await reload(caseDoc.id);
      } else {
        toast(err.message || "操作失败，请重试", "error");
      }
    } finally {
      for (const b of body.querySelectorAll(".cd-actions button")) b.disabled = false;
    }
  }

  // 补充定位: close the drawer's hold on the map for a moment, let the user click the spot.
  async function pickLocation(caseDoc) {
    drawer.classList.add("drawer-aside");
    const pick = document.getElementById("map-pick");
    pick.hidden = false;
    pick.textContent = `请在地图上点击案件 ${caseDoc.number} 的位置（按 Esc 取消）`;
    try {
      return await map.pick();
    } finally {
      pick.hidden = true;
      drawer.classList.remove("drawer-aside");
    }
  }

  async function reload(id) {
    const ticket = ++loading;
    try {
      const caseDoc = await api.get(`/api/cases/${encodeURIComponent(id)}`);
      if (ticket === loading && isOpen() && (!current || current.id === id)) show(caseDoc);
      return caseDoc;
    } catch (err) {
      if (ticket === loading) body.replaceChildren(el("p", { class: "panel-empty error" }, `无法加载案件：${err.message}`));
      return null;
    }
  }

  async function open(id, intent) {
    if (!isOpen()) returnFocus = document.activeElement;
    drawer.hidden = false;
    document.body.classList.add("drawer-open");
    if (!current || current.id !== id) {
      current = null;
      body.replaceChildren(el("p", { class: "panel-empty" }, "正在加载案件…"));
    }
    const caseDoc = await reload(id);
    if (!caseDoc) return;
    body.focus({ preventScroll: true });
    if (caseDoc.location) {
      const [lng, lat] = caseDoc.location.coordinates;
      map.focus({ id: caseDoc.id, status: caseDoc.status, flags: caseDoc.flags || {}, coords: [lng, lat] });
    }
    if (intent && availableActions(caseDoc).some((a) => a.action === intent)) perform(intent);
  }

  function close() {
    if (!isOpen()) return;
    map.cancelPick();
    drawer.hidden = true;
    document.body.classList.remove("drawer-open");
    if (handle) handle.destroy();
    handle = null;
    current = null;
    map.clearFocus();
    if (returnFocus && returnFocus.isConnected) returnFocus.focus();
  }

  // A live change to the open case: redraw it (not while the user is picking a place).
  let pending = null;
  function changed(id) {
    if (!current || current.id !== id || drawer.classList.contains("drawer-aside")) return;
    clearTimeout(pending);
    pending = setTimeout(() => reload(id), 400);
  }

  closeButton.addEventListener("click", close);
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && isOpen() && !document.querySelector("dialog[open]") && !drawer.classList.contains("drawer-aside")) close();
  });
  setInterval(() => { if (handle && isOpen()) handle.tick(); }, 1000);

  return { open, close, changed, isOpen, currentId: () => (current ? current.id : null) };
}
