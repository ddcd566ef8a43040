// What the operator assist (GET /api/assist) offers while a call is taken: suggested
// categories with the department the rules would pick, knowledge base articles, the caller's
// recent tickets and a repeat-request banner with one-click 并案. Nothing here changes the
// form by itself: the operator accepts with a key (Alt+S, Alt+K) or a click.
import { api, formatTime, STATUS_NAMES } from "./api.js";
import { el, fill } from "./dom.js";
import { debounce } from "./util.js";

const DELAY = 250;

function percent(score) {
  return `${Math.round(score * 100)}%`;
}

export function assistPanel({ categoryBox, knowledgeBox, callerBox }, { onAcceptCategory, onUseArticle, onMerge, onShow }) {
  let seq = 0, last = null, chosen = "";
  const runSoon = debounce((state) => run(state), DELAY);

  async function run({ text, location, phone, category }) {
    const mine = ++seq;
    chosen = category || "";
    const params = new URLSearchParams({ text: (text || "").slice(0, 4000) });
    if (location) { params.set("lng", location.lng.toFixed(6)); params.set("lat", location.lat.toFixed(6)); }
    const digits = (phone || "").trim();
    if (digits && /^\+?[0-9][0-9\- ()（）]{4,24}$/.test(digits)) params.set("phone", digits);
    if (category) params.set("category", category);
    if (!text && !params.has("phone")) { clear(); return; }
    try {
      const data = await api.get("/api/assist?" + params);
      if (mine !== seq) return;
      last = data;
      draw();
    } catch (err) {
      if (mine !== seq) return;
      last = null;
      categoryBox.replaceChildren(el("p", { class: "error-text small" }, "智能建议暂不可用：" + err.message));
    }
  }

  function clear() {
    seq++;
    runSoon.cancel();
    last = null;
    categoryBox.replaceChildren();
    knowledgeBox.replaceChildren();
    callerBox.replaceChildren();
  }

  function draw() {
    drawCategories();
    drawKnowledge();
    drawCaller();
  }

  function drawCategories() {
    // the top one always; the others only when they are a real alternative
    const items = ((last && last.categories) || []).filter((c, i) => i === 0 || c.score >= 0.08);
    if (!items.length) { categoryBox.replaceChildren(); return; }
    categoryBox.replaceChildren(
      el("span", { class: "suggest-label" }, "建议类别"),
      ...items.map((c, i) => el("button", {
        type: "button", class: "suggest-chip" + (c.code === chosen ? " taken" : ""), dataset: { code: c.code },
        title: c.department ? `规则预判派往 ${c.department.name}` : "确定位置后显示预判部门",
        onclick: () => onAcceptCategory(c.code),
      },
      i === 0 ? el("kbd", { "aria-hidden": "true" }, "Alt+S") : null,
      el("span", { class: "chip-name" }, c.name),
      el("span", { class: "chip-score" }, percent(c.score)),
      c.department ? el("span", { class: "chip-dept" }, "→ " + c.department.name) : null)));
  }

  function drawKnowledge() {
    const items = ((last && last.knowledge) || []).slice(0, 3);
    if (!items.length) { knowledgeBox.replaceChildren(); return; }
    knowledgeBox.replaceChildren(
      el("div", { class: "kb-head" }, "知识库", el("span", { class: "muted small" }, "（采用后填入即时答复并记录所用条目）")),
      el("ol", { class: "kb-list", id: "knowledge-list" }, items.map((a, i) => el("li", {
        class: "kb-item", dataset: { id: a.id },
      },
      el("div", { class: "kb-row" },
        el("span", { class: "kb-title" }, a.title),
        el("button", { type: "button", class: "btn btn-secondary btn-small kb-use", onclick: () => onUseArticle(a) },
          i === 0 ? el("kbd", { "aria-hidden": "true" }, "Alt+K") : null, " 采用答复")),
      el("div", { class: "kb-answer" }, a.answer)))));
  }

  function drawCaller() {
    const caller = last && last.caller;
    if (!caller || (!caller.recent.length && !caller.repeat_of)) { callerBox.replaceChildren(); return; }
    const repeat = caller.repeat_of ? findCase(caller.repeat_of) : null;
    fill(callerBox,
      repeat ? el("div", { class: "repeat-banner", id: "repeat-banner", role: "status", dataset: { id: repeat.id } },
        el("strong", {}, "疑似重复诉求"),
        el("span", {}, `与工单 ${repeat.number}（${(repeat.category || {}).name || ""}，${STATUS_NAMES[repeat.status] || repeat.status}）反映的是同一问题`
          + (repeat.repeat_count ? `，已重复来电 ${repeat.repeat_count} 次` : "")),
        el("button", { type: "button", class: "btn btn-secondary btn-small", id: "repeat-merge",
                       title: "保存本工单并并入原工单", onclick: () => onMerge(repeat) }, "并案")) : null,
      caller.recent.length ? el("div", { class: "caller-recent", id: "caller-recent" },
        el("span", { class: "muted small" }, `该号码近期来电 ${caller.recent.length} 次：`),
        el("ul", {}, caller.recent.slice(0, 5).map((c) => el("li", { dataset: { id: c.id, number: c.number } },
          el("button", { type: "button", class: "link", onclick: () => onShow(c) }, c.number),
          ` ${(c.category || {}).name || ""} · ${STATUS_NAMES[c.status] || c.status} · ${formatTime(c.created_at)}`
          + (c.repeat_count ? ` · 重复 ${c.repeat_count} 次` : ""))))) : null);
  }

  function findCase(id) {
    const all = [...((last && last.caller.recent) || []), ...((last && last.similar) || [])];
    return all.find((c) => c.id === id) || { id, number: id, category: null, status: "" };
  }

  return {
    update: runSoon,
    now(state) { runSoon.cancel(); return run(state); },
    reset: clear,
    topCategory: () => (last && last.categories[0]) || null,
    topArticle: () => (last && last.knowledge[0]) || null,
    markChosen(code) { chosen = code || ""; drawCategories(); },
  };
}
