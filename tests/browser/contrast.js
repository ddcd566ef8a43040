// WCAG 2.1 contrast of every visible text on the page (read by tests/browser/test_page_look.py).
// A text's background is found by walking up its ancestors and compositing their background
// colours (a gradient counts as its first colour stop); text over an image is skipped.
// Returns the texts below AA: 4.5:1, or 3:1 for large text (≥ 24 px, or ≥ 18.66 px bold).
() => {
  const parse = (c) => {
    const m = c && c.match(/rgba?\(([^)]+)\)/);
    if (!m) return null;
    const p = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const over = (top, bottom) => {
    const a = top[3] + bottom[3] * (1 - top[3]);
    if (!a) return [0, 0, 0, 0];
    return [0, 1, 2].map((i) => (top[i] * top[3] + bottom[i] * bottom[3] * (1 - top[3])) / a).concat([a]);
  };
  const lum = (c) => {
    const [r, g, b] = c.slice(0, 3).map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
  function background(node) {
    const layers = [];
    for (let n = node; n && n.nodeType === 1; n = n.parentElement) {
      const s = getComputedStyle(n);
      if (s.backgroundImage && s.backgroundImage !== "none") {
        if (!/gradient/.test(s.backgroundImage)) return null;  // a picture: unknown
        const stop = parse((s.backgroundImage.match(/rgba?\([^)]+\)/) || [])[0]);
        if (stop) layers.push(stop);
        if (stop && stop[3] === 1) break;
      }
      const c = parse(s.backgroundColor);
      if (c && c[3] > 0) { layers.push(c); if (c[3] === 1) break; }
      if (n.classList && (n.classList.contains("leaflet-container") || n.tagName === "CANVAS")) return null;
    }
    let colour = [255, 255, 255, 1];
    for (const layer of layers.reverse()) colour = over(layer, colour);
    return colour;
  }
  // A row fading in (the ticker's, a toast) is judged as it will stand, not mid-fade: finish every
  // transition and finite animation first (endless ones, such as the live dot's blink, stay).
  for (const a of document.getAnimations()) {
    if (a.effect && a.effect.getComputedTiming().endTime !== Infinity) a.finish();
  }
  const failures = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const seen = new Set();
  for (let t = walker.nextNode(); t; t = walker.nextNode()) {
    const node = t.parentElement;
    if (!t.textContent.trim() || !node || seen.has(node)) continue;
    seen.add(node);
    if (node.closest(".leaflet-pane, .leaflet-control, [aria-hidden='true'], .sr-only, .visually-hidden")) continue;
    const r = node.getBoundingClientRect();
    if (!r.width || !r.height || r.bottom < 0 || r.top > innerHeight || r.right < 0 || r.left > innerWidth) continue;
    const s = getComputedStyle(node);
    if (s.visibility === "hidden" || Number(s.opacity) === 0) continue;
    const fg = parse(s.color), bg = background(node);
    if (!fg || !bg) continue;
    let opacity = 1;
    for (let n = node; n; n = n.parentElement) opacity *= Number(getComputedStyle(n).opacity);
    const ink = over([fg[0], fg[1], fg[2], fg[3] * opacity], bg);
    const size = parseFloat(s.fontSize), bold = Number(s.fontWeight) >= 700;
    const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    const got = ratio(ink, bg);
    if (got + 0.005 < need && !(node.disabled || node.closest("[disabled], [aria-disabled='true']"))) {
      failures.push(`${node.tagName.toLowerCase()}.${[...node.classList].join(".")} "${t.textContent.trim().slice(0, 16)}" ${got.toFixed(2)}:1 < ${need} (${s.color} on rgb(${bg.slice(0, 3).map(Math.round)}), ${size}px)`);
    }
  }
  return failures;
}
