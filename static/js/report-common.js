// What the parts of the grid worker page share: wording, status and deadline badges, photo
// upload, full-screen sheets.
import { ACTION_NAMES, ApiError, STAGE_NAMES, STATUS_NAMES, formatTime, uploadPhoto as sharedUpload } from "./api.js";
import { el } from "./dom.js";
import { timerLevel, timerText } from "./time.js";

export { ACTION_NAMES };  // the server's names (api.js)

export function statusTag(status) {
  return el("span", { class: `tag status status-${status}` }, STATUS_NAMES[status] || status);
}

/** The running stage's deadline: {stage: "签收", at: iso} or null (from the server's `timer`). */
export function currentDeadline(c) {
  const timer = c.timer;
  return timer && !timer.paused ? { stage: STAGE_NAMES[timer.stage] || timer.stage, at: timer.due_at } : null;
}

function badgeState(timer, now) {
  const level = timerLevel(timer, now);
  return { text: `${STAGE_NAMES[timer.stage] || timer.stage} ${timerText(timer, now)}`, level };
}

/** "处置 剩余 1个工作小时（周一 10:30）": yellow once the stage is 临期, red when 超期. */
export function deadlineBadge(c, now = Date.now()) {
  const due = currentDeadline(c);
  if (!due) return null;
  const { text, level } = badgeState(c.timer, now);
  return el("span", {
    class: `tag deadline level-${level}`, title: `${due.stage}时限 ${formatTime(due.at)}`,
    dataset: { timer: JSON.stringify(c.timer) },
  }, text);
}

/** Count the badges on screen down without rebuilding the lists (a form being typed in stays). */
export function tickDeadlines(root = document, now = Date.now()) {
  for (const badge of root.querySelectorAll(".tag.deadline[data-timer]")) {
    const { text, level } = badgeState(JSON.parse(badge.dataset.timer), now);
    badge.textContent = text;
    badge.className = `tag deadline level-${level}`;
  }
}

export function departmentOf(c) {
  return ((c.assignment || {}).department || {}).name || null;
}

/** "东坡路社区 006 网格" under 东坡路社区 reads "006 网格". */
export function shortName(node, parent) {
  if (!node) return "";
  return parent && node.name.startsWith(parent.name) && node.name.length > parent.name.length
    ? node.name.slice(parent.name.length).trim() : node.name;
}

// The department a case goes to is only proposed (拟派往) until the command centre dispatches it.
const NOT_DISPATCHED = new Set(["reported", "filed"]);
export function dispatchLabel(c) {
  return NOT_DISPATCHED.has(c.status) ? "拟派往" : "派往";
}

// Where a case is, in words: the server's reverse-geocoded place (nearest door plate and
// community, `case.place`), then the street and grid.
export function placeOf(c) {
  const j = c.jurisdiction || {};
  const place = c.place && c.place.text;
  if (place) return [place, shortName(j.street), shortName(j.grid, j.community)].filter(Boolean).join(" · ");
  return [shortName(j.street), shortName(j.community), shortName(j.grid, j.community)].filter(Boolean).join(" · ");
}

export function newClientId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}


/** POST /api/attachments with the image bytes → {id, url}; a dead network → ApiError status 0. */
export function uploadPhoto(blob) {
  return sharedUpload(blob, "网络连接失败，照片暂未上传");
}

export const photoUrl = (id) => `/api/attachments/${encodeURIComponent(id)}`;

export function photoStrip(ids, label = "照片") {
  if (!ids || !ids.length) return null;
  return el("div", { class: "photo-strip" }, ids.map((id, i) =>
    el("a", { href: photoUrl(id), target: "_blank", rel: "noopener", class: "photo-thumb", "aria-label": `${label} ${i + 1}` },
      el("img", { src: photoUrl(id), alt: `${label} ${i + 1}`, loading: "lazy" }))));
}

/** A full-screen panel over the page (category picker, case detail): back button, Esc, and
 * the phone's own Back: opening pushes a history entry, so Back closes the sheet instead of
 * leaving the page (which, right after logging in, is the login form). */
let sheetSeq = 0;
export function openSheet(title, body, { onClose } = {}) {
  const previous = document.activeElement;
  const id = ++sheetSeq;
  let closed = false;
  const remove = () => {
    if (closed) return;
    closed = true;
    sheet.remove();
    document.removeEventListener("keydown", onKey);
    window.removeEventListener("popstate", onPop);
    if (!document.querySelector(".sheet")) document.body.classList.remove("sheet-open");
    if (previous && previous.focus) previous.focus();
    onClose && onClose();
  };
  // Back (or a history.back() below): our entry is gone once the state is older than ours.
  const onPop = () => { if (!(history.state && history.state.sheet >= id)) remove(); };
  const close = () => {
    const ours = history.state && history.state.sheet === id;
    remove();
    if (ours) history.back();  // drop our entry, so a later Back leaves as it would have
  };
  const onKey = (event) => { if (event.key === "Escape" && id === sheetSeq) close(); };
  const back = el("button", { type: "button", class: "sheet-back", "aria-label": "返回", onclick: close }, "‹ 返回");
  const sheet = el("div", { class: "sheet", role: "dialog", "aria-modal": "true", "aria-label": title },
    el("div", { class: "sheet-head" }, back, el("h2", { class: "sheet-title" }, title)),
    el("div", { class: "sheet-body" }, body));
  document.body.append(sheet);
  document.body.classList.add("sheet-open");
  document.addEventListener("keydown", onKey);
  history.pushState({ ...(history.state || {}), sheet: id }, "", location.href);
  window.addEventListener("popstate", onPop);
  back.focus();
  return { close, element: sheet };
}

export function emptyState(text, hint) {
  return el("div", { class: "empty" }, el("p", { class: "empty-title" }, text), hint ? el("p", { class: "muted" }, hint) : null);
}

export function loadingState(text = "正在加载…") {
  return el("div", { class: "loading", role: "status" }, el("span", { class: "spinner", "aria-hidden": "true" }), text);
}

export { debounce } from "./util.js";

export const isNetworkError = (err) => err instanceof ApiError && err.status === 0;
