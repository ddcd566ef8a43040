// The shared page header: who I am, my role and scope, the storage warning, logout.
import { api, loadLabels, ROLE_NAMES } from "./api.js";
import { el } from "./dom.js";
import { configureMaps } from "./map.js";
import { setTimeZone } from "./time.js";

export async function mountHeader(title) {
  const [me] = await Promise.all([api.get("/api/me"), loadLabels()]);
  setTimeZone(me.city.timezone);
  configureMaps(me);
  const header = document.querySelector("header.app-header") || el("header", { class: "app-header" });
  header.replaceChildren(
    el("div", { class: "brand" }, el("span", { class: "brand-mark" }, "统"), el("span", {}, `${me.city.name} · ${title}`)),
    el("div", { class: "who" },
      el("span", { class: "who-name" }, me.user.name || me.user.username),
      el("span", { class: "who-role" }, ROLE_NAMES[me.user.role] || me.user.role),
      el("span", { class: "who-scope" }, me.department_name || me.scope_name),
      el("button", { class: "btn btn-quiet", type: "button", id: "logout", onclick: logout }, "退出"),
    ),
  );
  if (!header.isConnected) document.body.prepend(header);
  if (!me.storage.persistent) {
    header.after(el("div", { class: "banner banner-warning", role: "note" },
      "演示模式：数据保存在内存中，服务重启后清空。"));
  }
  return me;
}

async function logout() {
  try { await api.post("/api/logout", {}); } finally { location.href = "/login"; }
}
