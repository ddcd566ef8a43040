import { api } from "./api.js";

const HOME = { grid_worker: "/report", operator: "/hotline", department: "/dept",
               dispatcher: "/command", commander: "/command", admin: "/command" };

const form = document.getElementById("login-form");
const error = document.getElementById("login-error");

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
    const next = new URLSearchParams(location.search).get("next");
    // Only same-site paths: an open redirect would let a phishing link borrow our login page.
    location.href = next && next.startsWith("/") && !next.startsWith("//") ? next : HOME[user.role] || "/";
  } catch (err) {
    error.textContent = err.status === 429 ? err.message : err.status === 401 ? "用户名或密码错误" : err.message;
  } finally {
    button.disabled = false;
  }
});
