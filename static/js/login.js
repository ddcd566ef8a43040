import { api } from "./api.js";

const HOME = { grid_worker: "/report", operator: "/hotline", department: "/dept",
               dispatcher: "/command", commander: "/command", admin: "/command" };

const form = document.getElementById("login-form");
const error = document.getElementById("login-error");

// Where to continue after logging in. The server decides (dispatch/handlers/pages.py,
// safe_next): it writes an approved same-site page path into data-next, or leaves it empty.
// The query string is never read here, so a crafted ?next= cannot send the user off-site.
function destination(role) {
  return form.dataset.next || HOME[role] || "/";
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  error.textContent = "";
  const username = form.username.value.trim();
  const password = form.password.value;
  if (!username || !password) { error.textContent = "请输入用户名和密码"; return; }
  const button = document.getElementById("login-submit");
  button.disabled = true;
  try {
    const { user } = await api.post("/api/login", { username, password });
    location.href = destination(user.role);
  } catch (err) {
    error.textContent = err.status === 429 ? err.message : err.status === 401 ? "用户名或密码错误" : err.message;
  } finally {
    button.disabled = false;
  }
});
