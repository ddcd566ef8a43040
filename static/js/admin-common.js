// What every admin editor shares: reading a kind of the city configuration with its version,
// publishing a new version (note, 409 when someone else published first, 422 listing every
// problem), and small form helpers. The server checks everything; the page only shows.
import { ApiError, request, toast } from "./api.js";
import { el } from "./dom.js";

export const KIND_NAMES = {
  departments: "部门", categories: "事件分类", rules: "派遣规则", zones: "专题区域",
  addresses: "门牌地址", calendar: "节假日与工作时间",
};

// Told by admin.js whenever a version is read or published: the nav shows it.
let onVersion = () => {};
export function watchVersion(fn) { onVersion = fn; }

export async function loadKind(kind) {
  const data = await request("GET", `/api/admin/config/${kind}`);
  onVersion(data.version);
  return data;
}

export function problemsBox(error) {
  const problems = (error.details && error.details.problems) || [];
  return el("div", { class: "problems", role: "alert" },
    el("h3", {}, error.message),
    // A problem is {file, item?, problem} for the city configuration, a sentence for an article.
    problems.length ? el("ul", {}, problems.map((p) => (typeof p === "string" ? el("li", {}, p) : el("li", {},
      p.file ? el("span", { class: "file" }, p.file + (p.item ? ` · ${p.item}` : "") + "：") : null, p.problem)))) : null);
}

// The bar under an editor: a note and 发布. `items()` gives the proposed items (or throws an
// Error whose message is shown); `done(version)` runs after a successful publish.
export function publishBar({ kind, version, items, done, extra = [], editable = true }) {
  if (!editable) return el("p", { class: "muted", role: "note" }, "您的管辖范围内只能查看此项配置，修改请联系市级管理员。");
  const note = el("input", { type: "text", placeholder: "修改说明（必填，将记入版本历史）", maxlength: "500", "aria-label": "修改说明" });
  const out = el("div", {});
  const button = el("button", { class: "btn", type: "button", onclick: publish }, "发布");
  async function publish() {
    out.replaceChildren();
    if (!note.value.trim()) { note.focus(); toast("请填写修改说明", "error"); return; }
    let proposed;
    try { proposed = items(); } catch (err) { out.append(el("div", { class: "problems", role: "alert" }, err.message)); return; }
    button.disabled = true;
    try {
      const published = await request("PUT", `/api/admin/config/${kind}`, { version: version(), items: proposed, note: note.value.trim() });
      onVersion(published.version);
      toast(`已发布第 ${published.version} 版，所有服务进程将在数秒内生效`, "success");
      done(published);
    } catch (err) {
      out.append(errorBox(err, () => done(null)));
    } finally {
      button.disabled = false;
    }
  }
  return el("div", {}, out, el("div", { class: "publish-bar" }, ...extra, note, button));
}

export function errorBox(err, reload) {
  if (err instanceof ApiError && err.status === 422 && err.details.problems) return problemsBox(err);
  if (err instanceof ApiError && err.status === 409) {
    return el("div", { class: "problems", role: "alert" }, el("h3", {}, err.message),
      el("button", { class: "btn btn-secondary btn-small", type: "button", onclick: reload }, "重新加载最新版本"));
  }
  return el("div", { class: "problems", role: "alert" }, err.message || String(err));
}

// Form helpers --------------------------------------------------------------------------------

export function input(value, attrs = {}) {
  return el("input", { type: "text", value: value ?? "", ...attrs });
}

export function select(value, options, attrs = {}) {
  return el("select", attrs, options.map(([v, label]) => el("option", { value: v, selected: v === value }, label)));
}

export function words(text) {
  return String(text || "").split(/[,，、\s]+/).map((w) => w.trim()).filter(Boolean);
}

export function heading(title, version, ...more) {
  return el("h2", {}, title, version ? el("span", { class: "tag" }, `当前第 ${version} 版`) : null, ...more);
}
