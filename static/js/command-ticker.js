// 最新动态: one line per live change — "14:32 上城区湖滨街道 暴露垃圾 已派遣 → 湖滨街道办事处".
import { el } from "./dom.js";
import { clockTime, place } from "./command-model.js";

const MAX_LINES = 60;

export function createTicker(list, { onOpen }) {
  let empty = true;

  function add(s, change) {
    if (empty) { list.replaceChildren(); empty = false; }
    const line = el("li", { class: `tk tk-${change.kind}` },
      el("button", { type: "button", class: "tk-button", title: `查看案件 ${s.number || ""}`, onclick: () => onOpen(s.id) },
        el("time", { class: "tk-time", datetime: s.updated_at || "" }, clockTime(s.updated_at || s.created_at)),
        el("span", { class: "tk-place" }, place(s)),
        el("span", { class: "tk-cat" }, (s.category || {}).name || ""),
        el("span", { class: "tk-text" }, change.text)));
    list.prepend(line);
    while (list.children.length > MAX_LINES) list.lastElementChild.remove();
  }

  return { add, count: () => (empty ? 0 : list.children.length) };
}
