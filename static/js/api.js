// The JSON API as seen from the pages: the session cookie authenticates, every write carries
// the X-XSRFToken header copied from the `_xsrf` cookie, errors arrive as ApiError.
import { el } from "./dom.js";
import { formatTime } from "./time.js";

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || {};
  }
}

function cookie(name) {
  const hit = document.cookie.split("; ").find((c) => c.startsWith(name + "="));
  return hit ? decodeURIComponent(hit.slice(name.length + 1)) : "";
}

export async function request(method, path, body) {
  const headers = { Accept: "application/json" };
  const init = { method, headers, credentials: "same-origin" };
  if (method !== "GET") {
    headers["X-XSRFToken"] = cookie("_xsrf");
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body ?? {});
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, "network", "网络连接失败，请检查网络后重试");
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!response.ok) {
    const e = (data && data.error) || {};
    if (response.status === 401 && !path.startsWith("/api/login")) {
      location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
    }
    throw new ApiError(response.status, e.code || "http_" + response.status, e.message || response.statusText, e);
  }
  return data;
}

// A photo as the raw request body (the server sniffs its type and limits its size).
export async function uploadPhoto(blob, offlineMessage = "网络连接失败，照片未上传") {
  let response;
  try {
    response = await fetch("/api/attachments", {
      method: "POST", credentials: "same-origin", body: blob,
      headers: { "Content-Type": blob.type || "image/jpeg", "X-XSRFToken": cookie("_xsrf"), Accept: "application/json" },
    });
  } catch {
    throw new ApiError(0, "network", offlineMessage);
  }
  let data = null;
  try { data = await response.json(); } catch { data = null; }
  if (!response.ok) {
    const e = (data && data.error) || {};
    throw new ApiError(response.status, e.code || "http_" + response.status, e.message || "照片上传失败", e);
  }
  return data;
}

export const api = {
  get: (path) => request("GET", path),
  post: (path, body) => request("POST", path, body),
  action: (caseId, action, body) => request("POST", `/api/cases/${encodeURIComponent(caseId)}/actions/${action}`, body),
};

// The server's names for statuses, actions (history entries too) and deadline stages, from
// GET /api/labels: the pages keep no words of their own for them. Filled in place by
// loadLabels() (mountHeader awaits it before a page draws anything), so importers may hold
// these objects from the start.
export const STATUS_NAMES = {};
export const ACTION_NAMES = {};
export const STAGE_NAMES = {};

let labelsLoaded = null;
export function loadLabels() {
  labelsLoaded ||= request("GET", "/api/labels").then((labels) => {
    Object.assign(STATUS_NAMES, labels.statuses);
    Object.assign(ACTION_NAMES, labels.actions);
    Object.assign(STAGE_NAMES, labels.stages);
  });
  return labelsLoaded;
}

export const ROLE_NAMES = {
  grid_worker: "网格员", operator: "热线受理员", dispatcher: "派遣员",
  department: "部门处置人员", commander: "指挥长", admin: "系统管理员",
};

// Times in the city's zone (time.js), re-exported for the modules that import it from here.
export { formatTime };

export function toast(message, kind = "info") {
  let box = document.getElementById("toasts");
  if (!box) {
    box = el("div", { id: "toasts", role: "status", "aria-live": "polite" });
    document.body.append(box);
  }
  const item = el("div", { class: `toast toast-${kind}` }, message);
  box.append(item);
  setTimeout(() => item.remove(), 4000);
}
