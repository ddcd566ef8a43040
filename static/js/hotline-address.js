// The address box: door-plate suggestions from /api/addresses as the operator types
// (debounced), chosen with ↑/↓ + Enter or the mouse. A typed address that was not chosen
// stays plain text: the server geocodes it on save when it can.
import { api } from "./api.js";
import { el } from "./dom.js";

const DELAY = 200;

export function addressCombo(input, list, { onChoose, onEdit }) {
  let items = [], active = -1, timer = null, asked = "", seq = 0;

  function open(show) {
    list.hidden = !show;
    input.setAttribute("aria-expanded", show ? "true" : "false");
    if (!show) { active = -1; input.removeAttribute("aria-activedescendant"); }
  }

  function draw() {
    list.replaceChildren(...items.map((item, i) => el("li", {
      id: `address-option-${i}`, role: "option", class: i === active ? "active" : null,
      "aria-selected": i === active ? "true" : "false",
      onmousedown: (event) => { event.preventDefault(); choose(i); },
    }, item.address)));
    if (active >= 0) {
      input.setAttribute("aria-activedescendant", `address-option-${active}`);
      list.children[active].scrollIntoView({ block: "nearest" });
    }
    open(items.length > 0);
  }

  async function ask(text) {
    const mine = ++seq;
    asked = text;
    try {
      const data = await api.get(`/api/addresses?q=${encodeURIComponent(text)}&limit=10`);
      if (mine !== seq || input.value.trim() !== text) return; // the operator kept typing
      items = data.items;
      active = -1;
      draw();
    } catch {
      items = [];
      open(false);
    }
  }

  function choose(i) {
    const item = items[i];
    if (!item) return;
    input.value = item.address;
    asked = item.address;
    items = [];
    open(false);
    onChoose(item);
  }

  input.addEventListener("input", () => {
    onEdit();
    clearTimeout(timer);
    const text = input.value.trim();
    if (!text) { items = []; open(false); return; }
    timer = setTimeout(() => { if (text !== asked || list.hidden) ask(text); }, DELAY);
  });

  input.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      if (list.hidden) {
        if (items.length) { event.preventDefault(); draw(); }
        else if (input.value.trim()) { event.preventDefault(); ask(input.value.trim()); }
        return;
      }
      event.preventDefault();
      const step = event.key === "ArrowDown" ? 1 : -1;
      active = (active + step + items.length + 1) % (items.length + 1);
      if (active === items.length) active = -1;
      draw();
    } else if (event.key === "Enter" && !event.ctrlKey && !event.metaKey) {
      if (!list.hidden && items.length) {
        event.preventDefault();
        choose(active >= 0 ? active : 0);
      }
    } else if (event.key === "Escape" && !list.hidden) {
      event.preventDefault();
      event.stopPropagation();
      open(false);
    }
  });

  input.addEventListener("blur", () => setTimeout(() => open(false), 120));

  return {
    close() { clearTimeout(timer); seq++; items = []; open(false); },
    isOpen: () => !list.hidden,
  };
}
