// Photos as a phone would send them: shrunk to at most 1600 px on the long side and re-encoded
// as JPEG in the browser (a 6 MB camera photo becomes ~300 KB), then POSTed raw to
// /api/attachments.
import { uploadPhoto as sharedUpload } from "./api.js";

const MAX_SIDE = 1600;
const QUALITY = 0.8;


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

export function uploadPhoto(blob) {
  return sharedUpload(blob);
}
