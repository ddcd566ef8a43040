// The audited reveal of a case's callers (POST /api/cases/{id}/reveal), as /dept and the
// /command drawer offer it. Nothing here decides who may: the case says so.
import { api, formatTime } from "./api.js";
import { el } from "./dom.js";
import { formDialog } from "./case-detail.js";
import { needText, textarea } from "./form-fields.js";

// 联系来电人: the caller is masked on the page; where the server says this user may unmask it
// (`case.may_reveal_caller`, from the access policy), the number comes through the audited
// reveal, with a reason, after the user confirms.
export function callerReveal(c) {
  if (!c.may_reveal_caller) return null;
  const box = el("div", { class: "caller-reveal" });
  const open = el("button", { class: "btn btn-secondary btn-small", type: "button", dataset: { reveal: "caller" } }, "联系来电人");
  open.addEventListener("click", async () => {
    let data = null;
    await formDialog({
      title: `联系来电人 · ${c.number}`,
      submit: "查看号码",
      body: [
        el("p", { class: "muted dlg-message" }, "来电人的姓名和完整号码仅用于联系核实，查看将被记录（查看人、时间、事由）。"),
        ...textarea("reveal-reason", "查看事由", { required: true, rows: 2, max: 200, placeholder: "如：联系来电人核实现场情况" }),
      ],
      onSubmit: async (form) => {
        const reason = needText(form, "reveal-reason", "请填写查看事由");
        data = await api.post(`/api/cases/${encodeURIComponent(c.id)}/reveal`, { reason });
      },
    });
    if (!data) return;
    const { name, phone } = data.caller;
    box.replaceChildren(
      el("span", { class: "caller-name" }, name || "来电人"), " ",
      // Plain text: dom.js lets only same-origin links through (no tel:); phones offer to call a number anyway.
      phone ? el("span", { class: "caller-phone" }, phone) : el("span", { class: "muted" }, "未留号码"),
      el("span", { class: "muted cd-small" }, ` · 已留痕（${formatTime(data.revealed_at)}）`),
      // Callers of repeats merged into this case: a callback reaches everyone who asked.
      ...(data.callers || []).map((k) => el("div", { class: "caller-merged" },
        el("span", { class: "caller-name" }, k.name || "来电人"), " ",
        k.phone ? el("span", { class: "caller-phone" }, k.phone) : el("span", { class: "muted" }, "未留号码"),
        el("span", { class: "muted cd-small" }, ` · 并案 ${k.number || ""}`))));
  });
  box.append(open);
  return box;
}

