// The right-hand work lists: the manual dispatch queue (待派遣: reported and filed cases, with
// the routed department and the reason, and inline 立案 / 派遣 / 作废 for the dispatcher), the
// overdue cases and the ones about to be. Each list is a page the server sent (command.js asks
// for it); the live feed adds and removes cases as they join or leave a list. Rows are keyed by
// case id and only rebuilt when the case changed, so an open inline form survives other cases'
// updates.
import { api, toast } from "./api.js";
import { el } from "./dom.js";
import { stageDeadline } from "./case-detail.js";
import { timerText } from "./time.js";
import { departmentSelect, doneText, dispatchTo, voidCase } from "./command-actions.js";
import { OPEN, ago, departmentName, place } from "./command-model.js";

const MAX_ROWS = 200;
const TYPE_NAMES = { consultation: "咨询", help: "求助", complaint: "投诉", report: "举报", suggestion: "建议", praise: "表扬" };

const TABS = [
  { key: "queue", name: "待派遣", empty: "暂无待派遣案件，新上报的案件会自动出现在这里",
    test: (s) => s.status === "reported" || s.status === "filed" },
  { key: "overdue", name: "超期案件", empty: "暂无超期案件",
    test: (s) => OPEN.includes(s.status) && !!(s.flags || {}).overdue },
  { key: "warning", name: "临期预警", empty: "暂无临期案件",
    test: (s) => OPEN.includes(s.status) && !!(s.flags || {}).warning && !(s.flags || {}).overdue },
];

function byQueueOrder(a, b) {
  const urgent = (s) => (s.priority === "urgent" ? 0 : 1);
  return urgent(a) - urgent(b) || String(a.created_at).localeCompare(String(b.created_at));
}

function byDeadline(a, b) {
  const at = (s) => { const d = stageDeadline(s); return d ? d.at : Infinity; };
  return at(a) - at(b);
}

function signature(s) {
  const f = s.flags || {};
  return [s.status, s.version, f.overdue, f.warning, f.supervised, f.needs_location, departmentName(s)].join("|");
}

export function createQueue({ tabsBox, listBox, noteBox, me, directory, onOpen, onChanged, onClearFilters, onMore, startTab = "queue" }) {
  const dispatcher = me.user.role === "dispatcher";
  let active = startTab;
  let lastAll = [], lastVisible = [], lastMore = new Set();
  const rows = new Map(); // id → {node, sig}

  const tabButtons = TABS.map((t) => el("button", {
    type: "button", role: "tab", id: `tab-${t.key}`, "aria-selected": t.key === active ? "true" : "false",
    "aria-controls": "work-list", dataset: { tab: t.key }, onclick: () => select(t.key),
  }, el("span", {}, t.name), el("span", { class: "tab-count" }, "0")));
  tabsBox.replaceChildren(...tabButtons);
  tabsBox.addEventListener("keydown", (e) => {
    if (e.key !== "ArrowRight" && e.key !== "ArrowLeft") return;
    const i = TABS.findIndex((t) => t.key === active);
    const next = TABS[(i + (e.key === "ArrowRight" ? 1 : TABS.length - 1)) % TABS.length].key;
    select(next);
    tabButtons.find((b) => b.dataset.tab === next).focus();
  });

  function select(key) {
    active = key;
    for (const b of tabButtons) b.setAttribute("aria-selected", b.dataset.tab === key ? "true" : "false");
    render(lastAll, lastVisible, lastMore);
  }

  async function act(button, work) {
    const row = button.closest(".qi");
    row.classList.add("busy");
    for (const b of row.querySelectorAll("button, select, input")) b.disabled = true;
    try {
      const updated = await work();
      if (updated) onChanged(updated);
      return updated;
    } catch (err) {
      toast(err.message, "error");
      return null;
    } finally {
      row.classList.remove("busy");
      for (const b of row.querySelectorAll("button, select, input")) b.disabled = false;
    }
  }

  function dispatchForm(s, row) {
    const id = `qd-${s.id}`;
    const select = departmentSelect(directory, s, { id });
    const form = el("form", { class: "qi-form", "aria-label": "派遣" },
      el("label", { for: id }, "派遣至"), select,
      el("div", { class: "qi-form-buttons" },
        el("button", { type: "submit", class: "btn btn-small" }, s.status === "reported" ? "立案并派遣" : "确认派遣"),
        el("button", { type: "button", class: "btn btn-small btn-secondary", onclick: () => { form.remove(); row.classList.remove("open"); } }, "取消")));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      if (!select.value) { select.focus(); toast("请选择责任部门", "error"); return; }
      const name = select.selectedOptions[0].textContent;
      const full = await api.get(`/api/cases/${encodeURIComponent(s.id)}`).catch((err) => { toast(err.message, "error"); return null; });
      if (!full) return;
      const updated = await act(form.querySelector("button[type=submit]"), () => dispatchTo(full, select.value));
      if (updated) toast(`${s.number} 已派遣至 ${name}`, "success");
    });
    return form;
  }

  // The row's buttons, from what the server says this user may do to the case now (`actions`,
  // as the drawer has them): 立案 / 派遣 (or 补充定位 first) / 作废 in the dispatch queue, 督办
  // on the overdue and warning lists. A summary from the live feed carries no per-user
  // actions: the case is read once for them when its row is (re)drawn.
  function actionButtons(s, row, allowed) {
    const may = new Map(allowed.map((a) => [a.name, a.label]));
    const buttons = [];
    if (active === "queue") {
      if (may.has("file")) buttons.push(el("button", {
        type: "button", class: "btn btn-small btn-secondary", title: "立案，稍后再派遣",
        onclick: async (e) => {
          const button = e.currentTarget;
          const full = await api.get(`/api/cases/${encodeURIComponent(s.id)}`).catch((err) => { toast(err.message, "error"); return null; });
          if (!full) return;
          const updated = await act(button, () => api.action(s.id, "file", { version: full.version }));
          if (updated) toast(`${s.number} ${doneText("file")}`, "success");
        },
      }, may.get("file")));
      if (may.has("relocate") && (s.flags || {}).needs_location) {
        buttons.push(el("button", { type: "button", class: "btn btn-small", title: "在地图上点选位置后再派遣",
                                    onclick: () => onOpen(s.id, "relocate") }, may.get("relocate")));
      } else if (may.has("dispatch") || may.has("file")) {
        // 派遣 from 待立案 files the case first (dispatchTo): offered wherever 立案 or 派遣 is.
        buttons.push(el("button", { type: "button", class: "btn btn-small qi-dispatch", onclick: () => {
          const open = row.querySelector(".qi-form");
          if (open) { open.remove(); row.classList.remove("open"); return; }
          row.classList.add("open");
          const form = dispatchForm(s, row);
          row.append(form);
          form.querySelector("select").focus();
        } }, "派遣"));
      }
      if (may.has("void")) buttons.push(el("button", { type: "button", class: "btn btn-small btn-ghost-danger", onclick: async (e) => {
        const button = e.currentTarget;
        const full = await api.get(`/api/cases/${encodeURIComponent(s.id)}`).catch((err) => { toast(err.message, "error"); return null; });
        if (!full) return;
        const updated = await act(button, () => voidCase(full));
        if (updated) toast(`${s.number} ${doneText("void")}`, "success");
      } }, may.get("void")));
    } else if (may.has("supervise") && !(s.flags || {}).supervised) {
      buttons.push(el("button", { type: "button", class: "btn btn-small btn-secondary",
        onclick: (e) => { e.stopPropagation(); onOpen(s.id, "supervise"); } }, may.get("supervise")));
    }
    return buttons.length ? el("div", { class: "qi-actions" }, buttons) : null;
  }

  function addActions(s, node) {
    const draw = (allowed) => {
      const box = actionButtons(s, node, allowed || []);
      if (box) node.append(box);
    };
    if (s.actions) { draw(s.actions); return; }
    api.get(`/api/cases/${encodeURIComponent(s.id)}`).then((c) => { s.actions = c.actions; draw(c.actions); }).catch(() => {});
  }

  function row(s) {
    const f = s.flags || {};
    const dept = departmentName(s);
    const reason = (s.assignment || {}).reason;
    const left = s.timer ? { text: timerText(s.timer) } : null;
    const node = el("div", { class: `qi${s.priority === "urgent" ? " qi-urgent" : ""}${f.overdue ? " qi-overdue" : f.warning ? " qi-warning" : ""}`,
                             role: "listitem", dataset: { id: s.id, status: s.status } });
    const main = el("button", { type: "button", class: "qi-main", title: "查看案件详情", onclick: () => onOpen(s.id) },
      el("div", { class: "qi-top" },
        el("span", { class: "qi-cat" }, (s.category || {}).name || "未分类"),
        s.priority === "urgent" ? el("span", { class: "tag tag-urgent" }, "紧急") : null,
        el("span", { class: "tag tag-source" }, s.source === "hotline" ? `热线·${TYPE_NAMES[s.type] || "来电"}` : "网格"),
        f.needs_location ? el("span", { class: "tag level-warning" }, "待补充定位") : null,
        f.supervised ? el("span", { class: "tag flag-supervised" }, "督办") : null,
        el("span", { class: "qi-time" }, active === "queue" ? ago(s.created_at) : left ? left.text : "")),
      el("div", { class: "qi-place" }, el("span", { class: "qi-where" }, [place(s), s.community].filter(Boolean).join(" · ")),
        el("span", { class: "qi-number" }, s.number || "")),
      s.summary ? el("div", { class: "qi-text" }, s.summary) : null,
      active === "queue"
        ? el("div", { class: "qi-route" }, el("span", { class: "qi-route-dept" }, dept ? `拟派：${dept}` : "未能自动确定责任部门"),
          reason ? el("span", { class: "qi-route-reason" }, reason) : null)
        : el("div", { class: "qi-route" }, el("span", { class: "qi-route-dept" }, dept ? `承办：${dept}` : "未派遣"),
          el("span", { class: "qi-route-reason" }, { dispatched: "待签收", accepted: "处置中", handled: "待核查", checked: "待结案", suspended: "挂账" }[s.status] || "")));
    node.append(main);
    addActions(s, node);
    return node;
  }

  // all: the lists' cases; visible: those passing the toolbar's status filter and the area;
  // more: the lists the server has more cases of than its pages held.
  function render(all, visible, more = new Set()) {
    lastAll = all; lastVisible = visible; lastMore = more;
    const tab = TABS.find((t) => t.key === active);
    for (const t of TABS) {
      const count = visible.filter(t.test).length;
      tabButtons.find((b) => b.dataset.tab === t.key).querySelector(".tab-count").textContent =
        count > 999 ? "999+" : more.has(t.key) ? `${count}+` : String(count);
    }
    const items = visible.filter(tab.test).sort(active === "queue" ? byQueueOrder : byDeadline);
    const hidden = all.filter(tab.test).length - items.length;
    noteBox.replaceChildren();
    if (hidden > 0) {
      noteBox.append(el("span", {}, `另有 ${hidden} 件不在当前筛选范围内`), " ",
        el("button", { type: "button", class: "link", onclick: onClearFilters }, "清除筛选"));
    } else if (active === "queue" && dispatcher && items.length) {
      noteBox.append(el("span", {}, "紧急案件优先，其余按上报先后排列"));
    }
    listBox.setAttribute("aria-busy", "false");
    if (!items.length) {
      rows.clear();
      listBox.replaceChildren(el("p", { class: "panel-empty" }, tab.empty));
      return;
    }
    const keep = new Map();
    const nodes = items.slice(0, MAX_ROWS).map((s) => {
      const key = `${active}:${s.id}`;
      const sig = signature(s);
      const cached = rows.get(key);
      const node = cached && cached.sig === sig ? cached.node : row(s);
      keep.set(key, { node, sig });
      return node;
    });
    rows.clear();
    for (const [k, v] of keep) rows.set(k, v);
    if (more.has(active) && items.length < MAX_ROWS) {
      nodes.push(moreButton(active, items.length));
    } else if (items.length > MAX_ROWS || more.has(active)) {
      nodes.push(el("p", { class: "panel-empty" }, `仅显示最新上报的 ${Math.min(items.length, MAX_ROWS)} 件，更多案件请用上方筛选或左下图表逐级缩小范围`));
    }
    // Replace only when the order or the nodes changed: keeps focus and open forms.
    const current = [...listBox.children];
    if (current.length !== nodes.length || current.some((n, i) => n !== nodes[i])) listBox.replaceChildren(...nodes);
  }

  // The list's next page, asked for by its reader (one button per list and page shown).
  const moreButtons = new Map();  // "key:shown" → node, so a re-render keeps a pressed button
  function moreButton(key, shown) {
    const id = `${key}:${shown}`;
    if (!moreButtons.has(id)) {
      moreButtons.clear();
      const button = el("button", { type: "button", class: "link work-more", onclick: async () => {
        const text = button.textContent;
        button.disabled = true;
        button.textContent = "加载中…";
        await onMore(key);
        button.disabled = false;  // (still shown: the page added none of this list, or failed)
        button.textContent = text;
        if (!button.isConnected) {  // the list grew: the keyboard goes on from its new end
          const next = listBox.querySelector(".work-more") || [...listBox.querySelectorAll(".qi-main")].pop();
          if (next) next.focus();
        }
      } }, `已显示最新上报的 ${shown} 件，加载更多`);
      moreButtons.set(id, el("p", { class: "panel-empty" }, button));
    }
    return moreButtons.get(id);
  }

  // Countdowns move with time; refresh the visible ones.
  setInterval(() => { if (active !== "queue") { rows.clear(); render(lastAll, lastVisible, lastMore); } }, 30000);

  // Whether a case belongs on one of the lists (the live feed keeps them current).
  const belongs = (s) => TABS.some((t) => t.test(s));

  return { render, select, belongs, active: () => active };
}
