// Photos as a phone would send them: shrunk to at most 1600 px on the long side and re-encoded
// as JPEG in the browser (a 6 MB camera photo becomes ~300 KB), then POSTed raw to
// /api/attachments.
import { ApiError } from "./api.js";

const MAX_SIDE = 1600;
const QUALITY = 0.8;

function cookie(name) {
  const hit = document.cookie.split("; ").find((c) => c.startsWith(name + "="));
  return hit ? decodeURIComponent(hit.slice(name.length + 1)) : "";
}

export async function compressImage(file, { maxSide = MAX_SIDE, quality = QUALITY } = {}) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
  } catch {
    throw new Error("无法读取这张图片，请选择 JPG 或 PNG 格式的照片");
  }
  const scale = Math.min(1, maxSide / Math.max(bitmap.width, bitmap.height));
  const width = Math.max(1, Math.round(bitmap.width * scale));
  const height = Math.max(1, Math.round(bitmap.height * scale));
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext("2d");
  context.fillStyle = "#fff"; // transparent PNG areas become white, not black
  context.fillRect(0, 0, width, height);
  context.drawImage(bitmap, 0, 0, width, height);
  bitmap.close && bitmap.close();
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", quality));
  if (!blob) throw new Error("照片压缩失败，请重试");
  return blob;
}

export async function uploadPhoto(blob) {
  let response;
  try {
    response = await fetch("/api/attachments", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": blob.type || "image/jpeg", "X-XSRFToken": cookie("_xsrf"), Accept: "application/json" },
      body: blob,
    });
  } catch {
    throw new ApiError(0, "network", "网络连接失败，照片未上传");
  }
  let data = null;
  try { data = await response.json(); } catch { data = null; }
  if (!response.ok) {
    const e = (data && data.error) || {};
    throw new ApiError(response.status, e.code || "http_" + response.status, e.message || "照片上传失败", e);
  }
  return data;
}
