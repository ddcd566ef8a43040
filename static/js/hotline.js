// 12345 热线受理台: record a call fast, keyboard first. The form on the left; the location,
// routing preview and similar open cases in the middle; callbacks and my tickets on the right.
import { api, toast } from "./api.js";
import { el } from "./dom.js";
import { mountHeader } from "./header.js";
import { CHANNEL_NAMES, confirmDialog, formDialog, renderCaseDetail, TYPE_NAMES } from "./case-detail.js";
import { addressCombo } from "./hotline-address.js";
import { routePreview, similarCases } from "./hotline-assist.js";
import { categoryPicker } from "./hotline-category.js";
import { assistPanel } from "./hotline-suggest.js";
import { createMap } from "./hotline-map.js";
import { mountSide, updateMine } from "./hotline-side.js";
import { segmented } from "./hotline-ui.js";

const CHANNELS = ["12345", "12315", "12319", "12328", "12333", "12350", "12369", "web", "wechat"];
const TYPES = ["consultation", "help", "complaint", "report", "suggestion", "praise"];
const ANSWERABLE = ["consultation", "praise"]; // 即时办结: nothing for a department to do
const PHONE = /^[0-9+\-\s()（）转]{3,20}$/;

const form = document.getElementById("ticket-form");
const $ = (id) => document.getElementById(id);
const fields = {
  channel: $("channel"), phone: $("caller-phone"), name: $("caller-name"), content: $("content"),
  category: $("category"), address: $("address"), answer: $("answer"),
};
const errorBox = $("form-error");
const locationLine = $("location-line");

const state = {
  me: null,
  categories: [],
  location: null,      // {lng, lat, source: "address" | "map", label}
  clientId: null,      // one per form: a double submit or a retry returns the same case
  saved: null,         // the case saved from this form (a follow-up action failed)
  busy: false,
  article: null,       // the knowledge base article whose answer was put into 即时答复
};
let typePicker, map, combo, preview, similar, picker, suggest;

function newClientId() {
  return crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(16).slice(2)}`;
}

// The category the ticket will carry: the chosen one, else the hotline category of its type.
function effectiveCategory() {
  if (picker.value) return picker.value;
  const byType = "H-" + typePicker.value;
  if (state.categories.some((c) => c.code === byType)) return byType;
  const hotline = state.categories.find((c) => c.kind === "hotline");
  return hotline ? hotline.code : "";
}

function assistState() {
  return { location: state.location, category: effectiveCategory(), content: fields.content.value.trim() };
}

function refreshAssist({ similarToo = false } = {}) {
  preview.update(assistState());
  suggest.update({ text: fields.content.value.trim(), location: state.location, phone: fields.phone.value.trim(),
                   category: picker.value });
  if (similarToo) similar.update({ location: state.location, category: picker.value });
}

// -- location ---------------------------------------------------------------------------------

function setLocation(lng, lat, source, label) {
  state.location = { lng, lat, source, label };
  map.setLocation(lng, lat, label);
  drawLocationLine();
  refreshAssist({ similarToo: true });
}

function clearLocation() {
  state.location = null;
  map.setLocation(null);
  drawLocationLine();
  preview.reset();
  similar.reset();
}

function drawLocationLine() {
  const loc = state.location;
  if (loc) {
    locationLine.className = "location-line ok";
    locationLine.replaceChildren(
      el("span", { class: "loc-dot", "aria-hidden": "true" }),
      loc.source === "address" ? `已按门牌定位：${loc.label}` : `已在地图上选点（${loc.lng.toFixed(5)}, ${loc.lat.toFixed(5)}）`,
      el("button", { class: "link small", type: "button", onclick: () => clearLocation() }, "清除定位"));
  } else if (fields.address.value.trim()) {
    locationLine.className = "location-line warn";
    locationLine.textContent = "地址尚未定位：请从下拉建议中选择门牌，或在地图上点击发生位置（未定位的工单保存时按地址自动匹配）。";
  } else {
    locationLine.className = "location-line";
    locationLine.textContent = "未定位：输入地址选择门牌建议，或在右侧地图上点击。";
  }
}

// -- the form ---------------------------------------------------------------------------------

function fillSelects() {
  fields.channel.replaceChildren(...CHANNELS.map((c) => el("option", { value: c }, CHANNEL_NAMES[c])));
  // hotline topics first: they are what a call is most often about
  const order = { hotline: 0, event: 1, component: 2 };
  const categories = [...state.categories].sort((a, b) => (order[a.kind] ?? 3) - (order[b.kind] ?? 3));
  picker = categoryPicker(fields.category, $("category-list"), {
    categories, emptyLabel: "按诉求类型自动归类（可输入：违停、摆摊、路灯…）",
    onChange: (code) => { suggest.markChosen(code); refreshAssist({ similarToo: true }); },
  });
}

// Alt+S: the operator takes the top suggested category (never applied without a key or click).
function acceptCategory(code) {
  const top = code || (suggest.topCategory() || {}).code;
  if (!top) { toast("暂无类别建议：请先填写诉求内容", "info"); return; }
  picker.set(top);
  suggest.markChosen(top);
  refreshAssist({ similarToo: true });
}

// Alt+K: the top knowledge article's answer goes into 即时答复, and the case will record it.
function useArticle(article) {
  const a = article || suggest.topArticle();
  if (!a) { toast("知识库暂无匹配条目", "info"); return; }
  if (!ANSWERABLE.includes(typePicker.value)) typePicker.set("consultation");
  onTypeChange();
  fields.answer.value = a.answer;
  state.article = { id: a.id, answer: a.answer };
  fields.answer.focus();
  toast(`已采用知识库：${a.title}`, "success");
}

function onTypeChange() {
  const answerable = ANSWERABLE.includes(typePicker.value);
  $("answer-box").hidden = !answerable;
  $("answer-now").hidden = !answerable;
  refreshAssist();
}

function isDirty() {
  return [fields.phone, fields.name, fields.content, fields.address, fields.answer].some((f) => f.value.trim())
    || !!state.location || !!picker.value;
}

function resetForm() {
  const channel = fields.channel.value; // the operator stays on the same line
  form.reset();
  fields.channel.value = channel;
  picker.set("");
  state.article = null;
  suggest.reset();
  typePicker.set("consultation");
  onTypeChange();
  combo.close();
  errorBox.textContent = "";
  state.clientId = newClientId();
  state.saved = null;
  clearLocation();
  map.reset();
  fields.phone.focus();
}

async function askClear() {
  if (!isDirty()) { resetForm(); return; }
  if (await confirmDialog({ title: "清空表单", message: "当前填写的内容尚未保存，确定清空并受理下一个来电？", confirm: "清空", danger: true })) resetForm();
}

function ticketBody() {
  const body = {
    channel: fields.channel.value,
    type: typePicker.value,
    content: fields.content.value.trim(),
    caller: { name: fields.name.value.trim() || null, phone: fields.phone.value.trim() || null },
    category: effectiveCategory(),
    client_id: state.clientId,
  };
  const address = fields.address.value.trim();
  if (address) body.address = address;
  if (state.location) body.location = { type: "Point", coordinates: [state.location.lng, state.location.lat] };
  return body;
}

function validate({ needAnswer = false } = {}) {
  errorBox.textContent = "";
  const fail = (field, message) => { errorBox.textContent = message; field.focus(); return false; };
  if (!typePicker.value) { errorBox.textContent = "请选择诉求类型"; typePicker.focus(); return false; }
  if (!fields.content.value.trim()) return fail(fields.content, "请填写诉求内容");
  const phone = fields.phone.value.trim();
  if (phone && !PHONE.test(phone)) return fail(fields.phone, "来电号码格式不对，请只填数字（可含区号、分机）");
  if (needAnswer && !fields.answer.value.trim()) return fail(fields.answer, "请填写即时答复内容");
  return true;
}

// Save the ticket (idempotent through client_id), then an optional follow-up action. A
// follow-up that fails leaves the form as it is: trying again returns the same ticket.
async function save({ then = null, label = "保存" } = {}) {
  if (state.busy) return;
  if (!validate({ needAnswer: then && then.action === "answer" })) return;
  state.busy = true;
  setBusy(true);
  let ticket = state.saved;
  try {
    if (!ticket) {
      ticket = await api.post("/api/tickets", ticketBody());
      state.saved = ticket;
      updateMine(ticket, { add: true });
    }
    let final = ticket;
    if (then) {
      try {
        final = await api.action(ticket.id, then.action, then.body);
      } catch (err) {
        errorBox.textContent = `工单 ${ticket.number} 已保存，但${label}未完成：${err.message}`;
        toast(`工单 ${ticket.number} 已保存，${label}未完成`, "error");
        return;
      }
      updateMine(final);
    }
    showSaved(final, then);
    resetForm();
  } catch (err) {
    errorBox.textContent = "保存失败：" + err.message;
  } finally {
    state.busy = false;
    setBusy(false);
  }
}

function setBusy(busy) {
  for (const id of ["save", "answer-now"]) $(id).disabled = busy;
  $("save").textContent = busy ? "正在保存…" : "保存工单";
  document.querySelectorAll("#similar-body .merge").forEach((b) => { b.disabled = busy; });
}

function showSaved(c, then) {
  const box = $("last-saved");
  const what = !then ? "已保存" : then.action === "answer" ? "已即时办结" : `已保存并并入 ${then.intoNumber}`;
  const dept = (c.assignment || {}).department;
  box.hidden = false;
  box.replaceChildren(
    el("span", { class: "saved-icon", "aria-hidden": "true" }, "✓"),
    el("div", {},
      el("div", {}, "工单 ", el("strong", { id: "saved-number" }, c.number), ` ${what}`),
      el("div", { class: "muted small" },
        // a ticket closed on the spot needs no place: nobody will be sent there
        c.status !== "closed" && c.flags && c.flags.needs_location ? "地址未能自动定位，已标记待补充定位"
          : then ? "" : dept ? `预判派遣：${dept.name}` : "等待指挥中心派遣")),
    el("button", { class: "link small", type: "button", onclick: () => showCase(c) }, "查看"));
  toast(`工单 ${c.number} ${what}`, "success");
}

async function mergeInto(target) {
  if (!validate()) return;
  const ok = await confirmDialog({
    title: "确认并案",
    message: `本次来电与案件 ${target.number}（${(target.category || {}).name || ""}）反映的是同一问题？\n\n系统将先保存本工单，再将其并入该案件，由该案件统一办理；来电人会加入该案件的反映人。`,
    confirm: "保存并并案",
  });
  if (!ok) return;
  await save({ then: { action: "merge", body: { into: target.id }, intoNumber: target.number }, label: "并案" });
}

async function answerNow() {
  if (!validate({ needAnswer: true })) return;
  const body = { answer: fields.answer.value.trim() };
  if (state.article) body.article = state.article.id;
  await save({ then: { action: "answer", body }, label: "即时办结" });
}

// Ctrl+Enter: an answerable ticket with an answer typed is closed on the spot (即时办结), not
// saved into the dispatch queue with its answer lost.
function submitByKeyboard() {
  if (ANSWERABLE.includes(typePicker.value) && fields.answer.value.trim()) answerNow();
  else save();
}

// -- viewing a case ---------------------------------------------------------------------------

export async function showCase(c) {
  let doc = c;
  try { doc = await api.get(`/api/cases/${encodeURIComponent(c.id)}`); } catch (err) { toast(err.message, "error"); return; }
  const body = el("div", { class: "case-dialog" });
  const shown = formDialog({ title: "案件详情", body, submit: "关闭", cancel: false, wide: true });
  const view = renderCaseDetail(body, doc, {});
  await shown;
  view.destroy();
}

// -- keyboard ---------------------------------------------------------------------------------

function keyboard() {
  document.addEventListener("keydown", (event) => {
    if (document.querySelector("dialog[open]")) return;
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      submitByKeyboard();
    } else if (event.altKey && !event.ctrlKey && (event.code === "KeyS" || event.code === "KeyK")) {
      event.preventDefault();
      if (event.code === "KeyS") acceptCategory();
      else useArticle();
    } else if (event.key === "Escape" && !combo.isOpen() && !picker.isOpen()) {
      event.preventDefault();
      askClear();
    } else if (event.altKey && /^[1-6]$/.test(event.key)) {
      event.preventDefault();
      typePicker.select(Number(event.key) - 1);
    }
  });
  // Enter in a one-line field moves on instead of submitting half a ticket.
  form.addEventListener("keydown", (event) => {
    if (event.key !== "Enter" || event.ctrlKey || event.metaKey || event.defaultPrevented) return;
    const target = event.target;
    if (target.tagName !== "INPUT") return;
    event.preventDefault();
    if (target === fields.phone) fields.name.focus();
    else if (target === fields.name) typePicker.focus();
  });
}

// -- start ------------------------------------------------------------------------------------

async function main() {
  state.me = await mountHeader("12345 热线受理");
  const data = await api.get("/api/categories");
  state.categories = data.items;
  suggest = assistPanel({
    categoryBox: $("category-suggest"), knowledgeBox: $("knowledge-suggest"), callerBox: $("caller-history"),
  }, {
    onAcceptCategory: acceptCategory, onUseArticle: useArticle, onMerge: mergeInto, onShow: showCase,
  });
  fillSelects();
  typePicker = segmented($("type-group"), TYPES.map((t) => [t, TYPE_NAMES[t]]), {
    value: "consultation", digits: true, label: "诉求类型", onChange: onTypeChange,
  });
  map = createMap($("map"), state.me, {
    onPick: (lng, lat) => setLocation(lng, lat, "map"),
  });
  preview = routePreview($("route-body"));
  similar = similarCases($("similar-body"), {
    onMerge: mergeInto,
    onShow: showCase,
    onFound: (items) => map.showSimilar(items, showCase),
  });
  combo = addressCombo(fields.address, $("address-list"), {
    onChoose: (item) => setLocation(item.lng, item.lat, "address", item.address),
    onEdit: () => {
      if (state.location && state.location.source === "address") clearLocation();
      else drawLocationLine();
    },
  });
  fields.content.addEventListener("input", () => refreshAssist());
  fields.phone.addEventListener("input", () => refreshAssist());
  fields.answer.addEventListener("input", () => {
    if (!fields.answer.value.trim()) state.article = null;  // the article's answer was thrown away
  });
  form.addEventListener("submit", (event) => { event.preventDefault(); save(); });
  $("answer-now").addEventListener("click", answerNow);
  $("clear").addEventListener("click", askClear);
  keyboard();
  mountSide({ showCase });
  state.clientId = newClientId();
  onTypeChange();
  drawLocationLine();
  fields.phone.focus();
}

main().catch((err) => {
  errorBox.textContent = "页面加载失败：" + err.message;
});
