// The one way the pages build DOM from data: nothing here ever parses a string as HTML.
//
//   el(tag, attrs, ...children)   an HTML element
//   svg(tag, attrs, ...children)  an SVG element (icons)
//   fill(node, ...children)       a node's children replaced (the DOM's own `replaceChildren`
//                                 and `append` write a null as the text "null")
//   add(node, ...children)        children appended
//
// children: nodes are appended as they are; anything else (user text included) becomes a text
// node, so "<img onerror=…>" shows as those characters. Arrays are flattened; null, undefined
// and false are skipped.
//
// attrs: set with setAttribute, and only those named in the allow-lists below (plus aria-* and
// data-*); `dataset: {…}` fills data-* attributes, `onclick: fn` (any on* with a function) adds
// a listener. An attribute name outside the lists throws: names come from our code, so this is
// a programming error to fix, never something a user can trigger. URL attributes (href, src)
// keep only same-origin http(s), blob: of this origin and data:image/…; any other value
// (javascript:, //other.host, /\other.host) is left out, because values may come from data.

const HTML_ATTRIBUTES = new Set([
  "accept", "alt", "autocomplete", "autofocus", "capture", "checked", "class", "cols", "colspan",
  "datetime", "disabled", "for", "hidden", "id", "inputmode", "label", "lang", "loading", "max", "maxlength",
  "method", "min", "minlength", "multiple", "name", "novalidate", "open", "pattern", "placeholder",
  "readonly", "rel", "required", "role", "rows", "rowspan", "selected", "size", "spellcheck", "step",
  "tabindex", "target", "title", "type", "value",
]);
const SVG_ATTRIBUTES = new Set([
  "class", "cx", "cy", "d", "fill", "height", "points", "r", "stroke", "stroke-width", "transform",
  "viewBox", "width", "x", "y",
]);
const URL_ATTRIBUTES = new Set(["href", "src"]);
// Elements that run or load code, or change how the document is read: never built from data.
const FORBIDDEN_TAGS = new Set([
  "applet", "base", "embed", "frame", "frameset", "iframe", "meta", "noscript", "object", "script", "style",
  "template", "foreignobject",
]);
const SVG_NS = "http://www.w3.org/2000/svg";

// The browser's own URL parser decides where a value points (it reads "\" as "/" and drops tabs).
export function isSafeUrl(value) {
  const text = String(value);
  if (/^data:image\/(png|jpeg|webp|gif);/i.test(text)) return true;
  let url;
  try { url = new URL(text, location.href); } catch { return false; }
  if (url.protocol === "blob:") return url.origin === location.origin;
  return (url.protocol === "http:" || url.protocol === "https:") && url.origin === location.origin;
}

function setAttributes(node, attrs, allowed) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "dataset") { Object.assign(node.dataset, value); continue; }
    if (/^on[a-z]+$/.test(key)) {
      if (typeof value !== "function") throw new TypeError(`el: ${key} must be a function`);
      node.addEventListener(key.slice(2), value);
      continue;
    }
    if (URL_ATTRIBUTES.has(key)) {
      if (isSafeUrl(value)) node.setAttribute(key, String(value));
      else console.warn(`el: unsafe ${key} left out`);
      continue;
    }
    if (!allowed.has(key) && !/^(aria|data)-[a-z-]+$/.test(key)) throw new TypeError(`el: attribute "${key}" is not allowed`);
    node.setAttribute(key, value === true ? "" : String(value));
  }
}

function appendChildren(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function checkTag(tag) {
  if (FORBIDDEN_TAGS.has(String(tag).toLowerCase())) throw new TypeError(`el: <${tag}> is not allowed`);
}

export function el(tag, attrs, ...children) {
  checkTag(tag);
  const node = document.createElement(tag);
  setAttributes(node, attrs, HTML_ATTRIBUTES);
  return appendChildren(node, children);
}

export function svg(tag, attrs, ...children) {
  checkTag(tag);
  const node = document.createElementNS(SVG_NS, tag);
  setAttributes(node, attrs, SVG_ATTRIBUTES);
  return appendChildren(node, children);
}

export function fill(node, ...children) {
  node.replaceChildren();
  return appendChildren(node, children);
}

export function add(node, ...children) {
  return appendChildren(node, children);
}
