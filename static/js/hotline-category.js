// The searchable category picker (诉求类别): type any part of a category's name, code, group or
// everyday words (categories.yaml `keywords`: 违停, 摆摊, 路灯不亮 …), pick with ↑/↓ + Enter or
// the mouse. Empty means "by the ticket type" (the server's default category of that type).
// A native <select> needed 34 ↓ presses to reach 占道经营; this needs three letters.
import { el } from "./dom.js";

const MAX_SHOWN = 40;

function label(c) {
  return c.kind === "hotline" ? c.name : `${c.name}（${c.code}）`;
}

export function categoryPicker(input, list, { categories, emptyLabel, onChange }) {
  let value = "", items = [], active = -1;
  const byCode = new Map(categories.map((c) => [c.code, c]));

  function haystack(c) {
    return [c.name, c.code, c.group || "", ...(c.keywords || [])].join(" ").toLowerCase();
  }
  const hay = new Map(categories.map((c) => [c.code, haystack(c)]));

  function matches(text) {
    const words = text.toLowerCase().split(/\s+/).filter(Boolean);
    if (!words.length) return categories.slice(0, MAX_SHOWN);
    const scored = [];
    for (const c of categories) {
      const h = hay.get(c.code);
      if (!words.every((w) => h.includes(w))) continue;
      // a name that starts with the words first, then names containing them, then keywords
      const name = c.name.toLowerCase();
      scored.push([name.startsWith(words[0]) ? 0 : name.includes(words[0]) ? 1 : 2, c]);
    }
    scored.sort((a, b) => a[0] - b[0]);
    return scored.slice(0, MAX_SHOWN).map((s) => s[1]);
  }

  function open(show) {
    list.hidden = !show;
    input.setAttribute("aria-expanded", show ? "true" : "false");
    if (!show) { active = -1; input.removeAttribute("aria-activedescendant"); }
  }

  function draw() {
    list.replaceChildren(...items.map((c, i) => el("li", {
      id: `category-option-${i}`, role: "option", class: i === active ? "active" : null,
      "aria-selected": i === active ? "true" : "false", dataset: { code: c.code },
      onmousedown: (event) => { event.preventDefault(); choose(c.code, true); },
    }, label(c), c.group ? el("span", { class: "muted small" }, ` · ${c.group}`) : null)));
    if (active >= 0) {
      input.setAttribute("aria-activedescendant", `category-option-${active}`);
      list.children[active].scrollIntoView({ block: "nearest" });
    }
    open(items.length > 0);
  }

  function show() {
    let text = input.value.trim();
    const chosen = value ? label(byCode.get(value)) : "";
    // typed after the chosen name (the click put the caret at its end): search what was typed
    if (chosen && text.startsWith(chosen)) text = text.slice(chosen.length).trim();
    items = text ? matches(text) : categories.slice(0, MAX_SHOWN);
    active = items.length ? 0 : -1;
    draw();
  }

  function choose(code, fromUser) {
    const changed = code !== value;
    value = code || "";
    input.value = value ? label(byCode.get(value)) : "";
    input.placeholder = emptyLabel;
    open(false);
    if (changed && onChange) onChange(value, fromUser);
  }

  input.addEventListener("input", () => {
    if (!input.value.trim()) { choose("", true); }
    show();
  });
  // Focus selects the chosen name, so typing searches afresh (a click must not then drop the
  // selection by placing the caret).
  input.addEventListener("focus", () => input.select());
  input.addEventListener("click", () => { if (value) input.select(); });
  input.addEventListener("blur", () => {
    open(false);
    // what was typed but not chosen is not a category: show the chosen one again
    input.value = value ? label(byCode.get(value)) : "";
  });
  input.addEventListener("keydown", (event) => {
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      if (list.hidden) { show(); return; }
      const n = items.length;
      if (!n) return;
      active = event.key === "ArrowDown" ? (active + 1) % n : (active - 1 + n) % n;
      draw();
    } else if (event.key === "Enter" && !list.hidden && active >= 0) {
      event.preventDefault();
      choose(items[active].code, true);
    } else if (event.key === "Escape" && !list.hidden) {
      event.preventDefault();
      event.stopPropagation();
      open(false);
    }
  });
  input.placeholder = emptyLabel;

  return {
    get value() { return value; },
    set(code) { choose(byCode.has(code) ? code : "", false); },
    isOpen: () => !list.hidden,
    name: (code) => (byCode.get(code) || {}).name || code,
  };
}
