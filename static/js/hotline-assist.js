// Before the ticket is saved: where it will go (GET /api/route) and which open cases nearby
// may be the same problem (GET /api/cases?near=…), each with one-click 并案.
import { api, formatTime, STATUS_NAMES } from "./api.js";
import { cityDate } from "./time.js";
import { debounce } from "./util.js";
import { el } from "./dom.js";

const RADIUS = 500;
const DAYS = 30;

function chain(j) {
  return ["district", "street", "community", "grid"].map((k) => j && j[k] && j[k].name).filter(Boolean).join(" › ");
}

export function routePreview(box) {
  let seq = 0;
  const runSoon = debounce((state) => run(state), 350);

  function placeholder(text) {
    box.replaceChildren(el("p", { class: "muted placeholder" }, text));
  }
  placeholder("选择地址或在地图上点选位置后，这里显示系统预判的属地和责任部门。");

  async function run({ location, category, content }) {
    const mine = ++seq;
    if (!location) {
      placeholder("选择地址或在地图上点选位置后，这里显示系统预判的属地和责任部门。");
      return;
    }
    box.classList.add("loading");
    const params = new URLSearchParams({
      lng: location.lng.toFixed(6), lat: location.lat.toFixed(6), category, source: "hotline", text: content || "",
    });
    try {
      const r = await api.get("/api/route?" + params);
      if (mine !== seq) return;
      box.replaceChildren(el("dl", { class: "route" },
        el("dt", {}, "属地"), el("dd", { id: "route-jurisdiction" }, chain(r.jurisdiction) || "—"),
        el("dt", {}, "责任部门"),
        el("dd", { id: "route-department", class: "route-dept" }, r.department ? r.department.name : "未能自动确定，保存后由指挥中心派遣",
          r.priority === "urgent" ? el("span", { class: "tag tag-urgent" }, "紧急") : null),
        el("dt", {}, "派遣依据"), el("dd", { id: "route-reason" }, r.reason || "—")));
    } catch (err) {
      if (mine !== seq) return;
      box.replaceChildren(el("p", { class: "error-text" }, err.code === "outside_city" ? "该位置不在本市范围内，请重新选择。" : "派遣预判失败：" + err.message));
    } finally {
      if (mine === seq) box.classList.remove("loading");
    }
  }

  return {
    update: runSoon,
    now(state) { runSoon.cancel(); return run(state); },
    reset() { seq++; runSoon.cancel(); placeholder("选择地址或在地图上点选位置后，这里显示系统预判的属地和责任部门。"); },
  };
}

export function similarCases(box, { onMerge, onShow, onFound }) {
  let seq = 0;
  const runSoon = debounce((state) => run(state), 300);

  function placeholder(text) {
    box.replaceChildren(el("p", { class: "muted placeholder" }, text));
  }
  placeholder("确定位置后，自动查找周边 500 米内近 30 天尚未办结的案件，避免重复派单。");

  async function run({ location, category }) {
    const mine = ++seq;
    if (!location) { reset(); return; }
    box.classList.add("loading");
    const from = cityDate(new Date(Date.now() - DAYS * 86400000));
    const params = new URLSearchParams({ near: `${location.lng.toFixed(6)},${location.lat.toFixed(6)},${RADIUS}`, open: "true", from, limit: "200" });
    if (category) params.set("category", category);
    try {
      const data = await api.get("/api/cases?" + params);
      if (mine !== seq) return;
      const items = data.items.filter((c) => c.status !== "merged").sort((a, b) => (a.distance_m ?? 0) - (b.distance_m ?? 0));
      onFound(items);
      if (!items.length) {
        placeholder(category ? "附近暂无同类未办结案件，可直接保存。" : "附近暂无未办结案件，可直接保存。");
        return;
      }
      box.replaceChildren(el("ul", { class: "similar-list", id: "similar-list" }, items.map((c) => el("li", {
        class: "similar-item", dataset: { id: c.id, number: c.number },
      },
      el("div", { class: "similar-main" },
        el("div", { class: "similar-top" },
          el("button", { class: "link similar-number", type: "button", title: "查看案件详情", onclick: () => onShow(c) }, c.number),
          el("span", { class: `tag status status-${c.status}` }, STATUS_NAMES[c.status] || c.status),
          el("span", { class: "similar-distance" }, `约 ${c.distance_m ?? "—"} 米`)),
        el("div", { class: "similar-category" }, (c.category || {}).name || "", el("span", { class: "muted" }, ` · ${formatTime(c.created_at)}`)),
        el("div", { class: "similar-summary" }, (c.description || "").slice(0, 80))),
      el("button", { class: "btn btn-secondary btn-small merge", type: "button", dataset: { into: c.id },
                     title: "本次来电与该案件反映的是同一问题：保存工单并并入该案件", onclick: () => onMerge(c) }, "并案")))));
    } catch (err) {
      if (mine !== seq) return;
      box.replaceChildren(el("p", { class: "error-text" }, "查找相似案件失败：" + err.message));
    } finally {
      if (mine === seq) box.classList.remove("loading");
    }
  }

  function reset() {
    seq++;
    runSoon.cancel();
    onFound([]);
    placeholder("确定位置后，自动查找周边 500 米内近 30 天尚未办结的案件，避免重复派单。");
  }

  return {
    update: runSoon,
    reset,
  };
}
