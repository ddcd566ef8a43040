// The form fields the action dialogs share (formDialog in case-detail.js draws the dialog):
// a labelled text area, and reading a required one back.
import { el } from "./dom.js";

export function textarea(id, label, { required = false, placeholder = "", rows = 3, max = 500, value = "" } = {}) {
  const box = el("textarea", { id, name: id, rows, maxlength: max, required, placeholder });
  box.value = value;
  return [el("label", { for: id }, label, required ? el("span", { class: "req", "aria-hidden": "true" }, " *") : null), box];
}

// The trimmed text of a required field; an empty one gets the focus and `message` as the error.
export function needText(form, name, message) {
  const value = form.elements[name].value.trim();
  if (!value) {
    form.elements[name].focus();
    throw new Error(message);
  }
  return value;
}
