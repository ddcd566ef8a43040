// 账号: list, create (with role, scope, department), disable / enable, reset a password.
// A district's admin sees and manages the accounts inside the district (the server decides).
import { request, ROLE_NAMES, toast } from "./api.js";
import { el } from "./dom.js";
import { errorBox, heading, input, select } from "./admin-common.js";

export async function renderUsers(holder, { reload }) {
  const { items } = await request("GET", "/api/admin/users");
  const out = el("div", {});
  const rows = items.map((account) => el("tr", { dataset: { username: account.username } },
    el("td", {}, account.username),
    el("td", {}, account.name || ""),
    el("td", {}, ROLE_NAMES[account.role] || account.role),
    el("td", {}, account.scope),
    el("td", {}, account.department || ""),
    el("td", {}, account.disabled ? el("span", { class: "tag tag-urgent" }, "已停用") : el("span", { class: "tag" }, "正常")),
    el("td", {},
      el("button", { class: "btn btn-secondary btn-small", type: "button",
        onclick: () => change(account.username, { disabled: !account.disabled }, account.disabled ? "已启用" : "已停用") },
      account.disabled ? "启用" : "停用"), " ",
      el("button", { class: "btn btn-secondary btn-small", type: "button", onclick: () => resetForm(account.username) }, "重置密码"), " ",
      el("button", { class: "btn btn-secondary btn-small", type: "button", onclick: () => scopeForm(account) }, "改辖区")),
  ));

  async function change(username, body, done) {
    out.replaceChildren();
    try {
      await request("PATCH", `/api/admin/users/${encodeURIComponent(username)}`, body);
      toast(`${username} ${done}`, "success");
      reload();
    } catch (err) { out.append(errorBox(err, reload)); }
  }

  function resetForm(username) {
    const password = el("input", { type: "password", autocomplete: "new-password", "aria-label": "新密码", placeholder: "新密码（至少 10 位）" });
    out.replaceChildren(el("div", { class: "toolbar" }, `为 ${username} 设置新密码：`, password,
      el("button", { class: "btn btn-small", type: "button", onclick: () => change(username, { password: password.value }, "密码已重置") }, "确定")));
    password.focus();
  }

  function scopeForm(account) {
    const scope = input(account.scope, { "aria-label": "新辖区", placeholder: "辖区 id（城市 id 为全市）" });
    out.replaceChildren(el("div", { class: "toolbar" }, `把 ${account.username} 调整到辖区：`, scope,
      el("button", { class: "btn btn-small", type: "button", onclick: () => change(account.username, { scope: scope.value.trim() }, "辖区已调整（需重新登录）") }, "确定")));
    scope.focus();
  }

  const form = {
    username: input("", { "aria-label": "用户名", placeholder: "用户名" }),
    name: input("", { "aria-label": "姓名", placeholder: "姓名" }),
    password: el("input", { type: "password", autocomplete: "new-password", "aria-label": "初始密码", placeholder: "初始密码（至少 10 位）" }),
    role: select("operator", Object.entries(ROLE_NAMES), { "aria-label": "角色" }),
    scope: input("", { "aria-label": "辖区", placeholder: "辖区 id（城市 id 为全市）" }),
    department: input("", { "aria-label": "部门", placeholder: "部门 id（部门人员必填）" }),
  };
  async function create() {
    out.replaceChildren();
    const body = { username: form.username.value.trim(), password: form.password.value, role: form.role.value,
      scope: form.scope.value.trim(), name: form.name.value.trim() };
    if (form.department.value.trim()) body.department = form.department.value.trim();
    try {
      await request("POST", "/api/admin/users", body);
      toast(`已创建账号 ${body.username}`, "success");
      reload();
    } catch (err) { out.append(errorBox(err, reload)); }
  }

  holder.append(
    heading("账号"),
    el("table", { class: "grid-table" },
      el("thead", {}, el("tr", {}, ["用户名", "姓名", "角色", "辖区", "部门", "状态", "操作"].map((h) => el("th", {}, h)))),
      el("tbody", {}, rows)),
    out,
    el("h3", {}, "新建账号"),
    el("div", { class: "toolbar" }, form.username, form.name, form.password, form.role, form.scope, form.department,
      el("button", { class: "btn", type: "button", onclick: create }, "创建")),
  );
}
