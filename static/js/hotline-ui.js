// Keyboard-first segmented buttons (a radio group): ←/→ (or ↑/↓) move and select, Home/End,
// and the shortcut digit shown on each button when `digits` is set.
import { el } from "./dom.js";

export function segmented(box, options, { value = null, onChange = () => {}, digits = false, label = "" } = {}) {
  let current = value;
  box.setAttribute("role", "radiogroup");
  if (label) box.setAttribute("aria-label", label);
  box.classList.add("segmented");
  const buttons = options.map(([v, text], i) => el("button", {
    type: "button", role: "radio", class: "seg", dataset: { value: v },
    onclick: () => set(v, true),
    onkeydown: (event) => keys(event, i),
  }, digits ? el("kbd", { class: "seg-key", "aria-hidden": "true" }, String(i + 1)) : null, text));
  box.replaceChildren(...buttons);

  function draw() {
    const focusable = current === null ? options[0][0] : current;
    buttons.forEach((b, i) => {
      const on = options[i][0] === current;
      b.setAttribute("aria-checked", on ? "true" : "false");
      b.classList.toggle("on", on);
      b.tabIndex = options[i][0] === focusable ? 0 : -1;
    });
  }

  function set(v, fromUser = false, focus = false) {
    const changed = v !== current;
    current = v;
    draw();
    if (focus) buttons[options.findIndex((o) => o[0] === v)].focus();
    if (changed || fromUser) onChange(v, fromUser);
  }

  function keys(event, i) {
    const n = options.length;
    const to = { ArrowRight: i + 1, ArrowDown: i + 1, ArrowLeft: i - 1, ArrowUp: i - 1, Home: 0, End: n - 1 }[event.key];
    if (to !== undefined) {
      event.preventDefault();
      set(options[(to + n) % n][0], true, true);
      return;
    }
    if (digits && /^[1-9]$/.test(event.key) && !event.ctrlKey && !event.altKey && !event.metaKey && Number(event.key) <= n) {
      event.preventDefault();
      set(options[Number(event.key) - 1][0], true, true);
    }
  }

  draw();
  return {
    get value() { return current; },
    set: (v, focus = false) => set(v, false, focus),
    select: (index) => set(options[index][0], true, true),
    focus: () => (buttons.find((b) => b.tabIndex === 0) || buttons[0]).focus(),
    setDisabled(disabled) { buttons.forEach((b) => { b.disabled = disabled; }); },
  };
}
