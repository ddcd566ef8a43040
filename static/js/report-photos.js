// Photos from the phone's camera: shrunk in the browser (JPEG, longest side ≤ 1600 px) and
// uploaded at once when there is a network; without one they stay as blobs for the queue.
import { toast } from "./api.js";
import { el, fill } from "./dom.js";
import { compressPhoto } from "./photos.js";
import { isNetworkError, uploadPhoto } from "./report-common.js";

export const MAX_PHOTOS = 9;

/**
 * The photo tiles of a form. `photos()` → [{id?, blob}] for sending; `settle()` waits for the
 * uploads under way and retries the ones that failed for want of a network.
 */
export function createPhotoPicker({ inputId, max = MAX_PHOTOS, label = "现场照片", onChange = () => {} }) {
  let items = [];  // {key, blob, url, id, state: uploading|done|local|error, error, task}
  let counter = 0;
  const grid = el("div", { class: "photo-grid", role: "list", "aria-label": label });
  const input = el("input", { type: "file", accept: "image/*", capture: "environment", multiple: true, id: inputId, class: "visually-hidden" });
  const addTile = el("label", { class: "photo-add" }, input,
    el("span", { class: "photo-add-icon", "aria-hidden": "true" }, "+"), el("span", {}, "拍照/添加"));
  const count = el("span", { class: "photo-count muted" });

  input.addEventListener("change", async () => {
    const files = [...input.files];
    input.value = "";
    const room = max - items.length;
    if (files.length > room) toast(`最多上传 ${max} 张照片，已忽略多出的 ${files.length - room} 张`, "error");
    await Promise.all(files.slice(0, Math.max(0, room)).map(add));
  });

  async function add(file) {
    const item = { key: ++counter, state: "uploading", blob: null, url: null, id: null, error: null };
    items.push(item);
    render();
    try {
      item.blob = await compressPhoto(file);
      item.url = URL.createObjectURL(item.blob);
    } catch (err) {
      items = items.filter((x) => x !== item);
      render();
      toast(err.message, "error");
      return;
    }
    item.task = upload(item);
    await item.task;
  }

  async function upload(item) {
    if (!navigator.onLine) { item.state = "local"; render(); return; }
    item.state = "uploading";
    render();
    try {
      const { id } = await uploadPhoto(item.blob);
      item.id = id;
      item.state = "done";
    } catch (err) {
      if (isNetworkError(err)) item.state = "local";
      else { item.state = "error"; item.error = err.message; }
    }
    if (items.includes(item)) render();
  }

  function remove(item) {
    items = items.filter((x) => x !== item);
    if (item.url) URL.revokeObjectURL(item.url);
    render();
  }

  const STATE_TEXT = { uploading: "上传中…", local: "待发送", error: "上传失败" };

  function render() {
    fill(grid,
      ...items.map((item, i) => el("div", { class: `photo-tile photo-${item.state}`, role: "listitem", dataset: { state: item.state } },
        item.url ? el("img", { src: item.url, alt: `${label} ${i + 1}` }) : el("span", { class: "spinner", "aria-hidden": "true" }),
        STATE_TEXT[item.state] ? el("span", { class: "photo-state", title: item.error || "" }, STATE_TEXT[item.state]) : null,
        el("button", { type: "button", class: "photo-remove", "aria-label": `删除第 ${i + 1} 张照片`, onclick: () => remove(item) }, "×"))),
      items.length < max ? addTile : null,
    );
    count.textContent = `${items.length}/${max}`;
    onChange();
  }

  render();
  return {
    element: el("div", { class: "photo-picker" }, grid),
    count,
    busy: () => items.some((x) => x.state === "uploading"),
    errors: () => items.filter((x) => x.state === "error"),
    /** Wait for uploads; try again the ones without a network. */
    async settle() {
      await Promise.all(items.map((x) => x.task));
      for (const item of items.filter((x) => x.state === "local")) {
        item.task = upload(item);
        await item.task;
        if (item.state === "local") break;  // still no network: no use trying the rest
      }
    },
    photos: () => items.map((x) => (x.id ? { id: x.id } : { blob: x.blob })),
    uploadedIds: () => items.filter((x) => x.id).map((x) => x.id),
    clear() { items.forEach((x) => x.url && URL.revokeObjectURL(x.url)); items = []; render(); },
  };
}
