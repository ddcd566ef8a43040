// What a department may do with a case, and the forms for it: 签收, 处置反馈 (with photos
// compressed in the browser), 退单, 申请延期, 报到.
import { api, formatTime, uploadPhoto } from "./api.js";
import { el } from "./dom.js";
import { needText, textarea } from "./form-fields.js";
import { confirmDialog, formDialog, openLightbox } from "./case-detail.js";
import { compressPhoto } from "./photos.js";

// Whether a button shows is the server's decision alone (`case.actions`, with its label); what
// stays here is UI: prominence, a hint, and the form for each action, in the page's order.
const UI = {
  sign: { kind: "primary", hint: "确认本部门接收此案件，开始处置计时" },
  feedback: { kind: "primary", hint: "填写处置结果并上传处置后照片" },
  checkin: { kind: "primary", hint: "吹哨召集：确认本部门已到场" },
  request_extension: { kind: "secondary", hint: "处置时间不够时向指挥中心申请" },
  escalate: { kind: "secondary", hint: "需要上级协调时上报上一级指挥中心" },
  return: { kind: "secondary", hint: "不属于本部门职责时退回指挥中心" },
};
const ORDER = Object.keys(UI);
const MAX_PHOTOS = 9;

export function availableActions(c) {
  return (c.actions || []).filter((a) => UI[a.name])
    .sort((a, b) => ORDER.indexOf(a.name) - ORDER.indexOf(b.name))
    .map((a) => ({ action: a.name, label: a.label, ...UI[a.name] }));
}

// Runs the action (asking for its fields first); the updated case, or null when cancelled.
export async function runAction(action, c) {
  const forms = { sign, feedback, return: returnCase, request_extension: requestExtension, checkin, escalate };
  return forms[action](c);
}

export const DONE_MESSAGES = {
  sign: "已签收，处置计时开始", feedback: "处置反馈已提交，等待核查", return: "已退单，等待指挥中心审核",
  request_extension: "延期申请已提交，等待指挥中心审批", checkin: "已报到", escalate: "已上报上一级指挥中心",
};

function post(c, action, body) {
  return api.action(c.id, action, { ...body, version: c.version });
}

async function sign(c) {
  return post(c, "sign", {});
}

async function checkin(c) {
  const summons = (c.summons || []).find((s) => !s.checked_in_at);
  const ok = await confirmDialog({
    title: "吹哨报到",
    message: `确认本部门已到场报到？${summons ? `\n报到时限：${formatTime(summons.due_at)}` : ""}`,
    confirm: "确认报到",
  });
  return ok ? post(c, "checkin", {}) : null;
}

// A department asks the level above for help (吹哨 up); summoning other departments is the
// command centre's.
async function escalate(c) {
  let result = null;
  await formDialog({
    title: `上报上一级 · ${c.number}`,
    submit: "确认上报",
    body: [
      el("p", { class: "muted dlg-message" }, "案件将上报上一级指挥中心协调处置，本部门继续承办。"),
      ...textarea("esc-note", "上报说明", { required: true, placeholder: "如：涉及多个部门职责，需上级协调" }),
    ],
    onSubmit: async (form) => {
      result = await post(c, "escalate", { to: "up", note: needText(form, "esc-note", "请填写上报说明") });
    },
  });
  return result;
}

async function returnCase(c) {
  const quick = ["不属于本部门职责范围", "案件地址不在本辖区", "诉求信息不全，无法处置", "重复派遣"];
  let result = null;
  await formDialog({
    title: `退单 · ${c.number}`,
    submit: "确认退单",
    danger: true,
    body: [
      el("p", { class: "muted dlg-message" }, "退单提交指挥中心审核（审核期间计时暂停）：同意则改派，驳回则继续由本部门办理。退单计入本部门退单次数。"),
      ...textarea("return-reason", "退单原因", { required: true, placeholder: "请写明退单原因，如应由哪个部门处置" }),
      el("div", { class: "chips", role: "group", "aria-label": "常用原因" }, quick.map((q) =>
        el("button", { class: "chip", type: "button", onclick: (e) => {
          const box = e.target.closest("form").elements["return-reason"];
          // One separator, never "。；": what was typed loses its closing punctuation first.
          const typed = box.value.replace(/[\s。；;，,、.！!？?]+$/, "");
          box.value = typed ? typed + "；" + q : q;
          box.focus();
        } }, q))),
    ],
    onSubmit: async (form) => {
      const reason = needText(form, "return-reason", "请填写退单原因");
      result = await post(c, "return", { reason });
    },
  });
  return result;
}

async function requestExtension(c) {
  const options = [["4wh", "4个工作小时"], ["1wd", "1个工作日"], ["2wd", "2个工作日"], ["3wd", "3个工作日"], ["5wd", "5个工作日"]];
  let result = null;
  const untilBox = el("div", { class: "until-box", hidden: true },
    el("label", { for: "ext-until" }, "延至"),
    el("input", { id: "ext-until", name: "ext-until", type: "datetime-local" }));
  // The new deadline, as approving the request will set it (the server's business calendar).
  const handleBy = (c.deadlines || {}).handle_by;
  const preview = el("p", { class: "ext-preview", id: "ext-preview", "aria-live": "polite" });
  async function showPreview(choice) {
    if (choice === "until" || !handleBy) { preview.textContent = ""; return; }
    preview.textContent = "正在计算新的处置时限…";
    try {
      const r = await api.get(`/api/calendar/add?from=${encodeURIComponent(handleBy)}&duration=${encodeURIComponent(choice)}`);
      if (select.value === choice) preview.textContent = `批准后新的处置时限：${formatTime(r.at)}（按工作日历计算）`;
    } catch {
      preview.textContent = "";
    }
  }
  const select = el("select", { id: "ext-duration", name: "ext-duration", onchange: (e) => { untilBox.hidden = e.target.value !== "until"; showPreview(e.target.value); } },
    options.map(([v, t]) => el("option", { value: v }, `延长 ${t}`)),
    el("option", { value: "until" }, "延至指定时间…"));
  showPreview(options[0][0]);
  await formDialog({
    title: `申请延期 · ${c.number}`,
    submit: "提交申请",
    body: [
      el("p", { class: "muted dlg-message" }, `当前处置时限：${formatTime((c.deadlines || {}).handle_by)}。申请提交后由指挥中心审批。`),
      el("label", { for: "ext-duration" }, "延期时长"), select, preview, untilBox,
      ...textarea("ext-reason", "申请理由", { required: true, placeholder: "如：需协调产权单位、等待材料到货等" }),
    ],
    onSubmit: async (form) => {
      const choice = form.elements["ext-duration"].value;
      const body = {};
      if (choice === "until") {
        const until = form.elements["ext-until"].value;
        if (!until) { form.elements["ext-until"].focus(); throw new Error("请选择延至的时间"); }
        body.until = until.length === 16 ? until + ":00" : until;
      } else {
        body.duration = choice;
      }
      body.reason = needText(form, "ext-reason", "请填写申请理由");
      result = await post(c, "request_extension", body);
    },
  });
  return result;
}

async function feedback(c) {
  let result = null;
  const photos = []; // {id?, url, state: "uploading"|"done"|"error", error?}
  const strip = el("div", { class: "upload-strip", role: "list", "aria-label": "已选照片" });
  const status = el("p", { class: "field-hint", "aria-live": "polite" }, "最多 9 张；照片会在手机/电脑上自动压缩后上传。");
  const input = el("input", { id: "fb-photos", name: "fb-photos", type: "file", accept: "image/*", multiple: true, capture: "environment", class: "visually-hidden" });
  const pick = el("label", { for: "fb-photos", class: "btn btn-secondary btn-small upload-pick", tabindex: "0",
                             onkeydown: (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); input.click(); } } },
    el("span", { class: "upload-plus", "aria-hidden": "true" }, "＋"), "添加照片");

  function drawStrip() {
    strip.replaceChildren(...photos.map((p, i) => el("div", { class: `upload-item ${p.state}`, role: "listitem" },
      el("button", { class: "upload-thumb", type: "button", title: "查看大图", onclick: () => openLightbox(p.url, "处置照片") },
        el("img", { src: p.url, alt: `处置照片 ${i + 1}` })),
      p.state === "uploading" ? el("span", { class: "upload-state" }, "上传中…") : null,
      p.state === "error" ? el("span", { class: "upload-state error" }, "上传失败") : null,
      el("button", { class: "upload-remove", type: "button", "aria-label": `移除第${i + 1}张照片`, onclick: () => {
        photos.splice(i, 1); drawStrip();
      } }, "×"))));
    pick.hidden = photos.length >= MAX_PHOTOS;
  }

  input.addEventListener("change", async () => {
    const files = [...input.files].slice(0, MAX_PHOTOS - photos.length);
    input.value = "";
    await Promise.all(files.map(async (file) => {
      const item = { url: URL.createObjectURL(file), state: "uploading" };
      photos.push(item);
      drawStrip();
      try {
        const blob = await compressPhoto(file);
        URL.revokeObjectURL(item.url);
        item.url = URL.createObjectURL(blob);
        const saved = await uploadPhoto(blob);
        item.id = saved.id;
        item.state = "done";
      } catch (err) {
        item.state = "error";
        item.error = err.message;
        status.textContent = "照片上传失败：" + err.message;
      }
      drawStrip();
    }));
  });

  await formDialog({
    title: `处置反馈 · ${c.number}`,
    submit: "提交反馈",
    wide: true,
    body: [
      ...textarea("fb-result", "处置结果", { required: true, rows: 5, max: 2000,
        placeholder: "写明处置经过和结果，如：已安排人员清运垃圾，现场已恢复整洁" }),
      el("label", {}, "处置后照片"),
      el("div", { class: "upload-row" }, strip, pick, input),
      status,
    ],
    onSubmit: async (form) => {
      const text = needText(form, "fb-result", "请填写处置结果");
      if (photos.some((p) => p.state === "uploading")) throw new Error("照片还在上传，请稍候再提交");
      if (photos.some((p) => p.state === "error")) throw new Error("有照片上传失败，请移除后重新添加");
      result = await post(c, "feedback", { result: text, photos: photos.map((p) => p.id) });
    },
  });
  for (const p of photos) URL.revokeObjectURL(p.url);
  return result;
}

