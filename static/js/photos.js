// Photos as a phone would send them: shrunk in the browser to at most 1600 px on the long side
// and re-encoded as JPEG (a 6 MB camera photo becomes ~300 KB); transparent areas turn white.
// Used by the grid worker's report form and the department's result form.

const MAX_SIDE = 1600;
const QUALITY = 0.8;

// An ImageBitmap (camera orientation applied) or, where that fails, a decoded <img>.
async function decode(file) {
  if (window.createImageBitmap) {
    try { return await createImageBitmap(file, { imageOrientation: "from-image" }); } catch { /* fall back to <img> */ }
  }
  const url = URL.createObjectURL(file);
  try {
    const img = new Image();
    img.src = url;
    await img.decode();
    return img;
  } finally {
    URL.revokeObjectURL(url);
  }
}

/** A JPEG blob whose longest side is at most `maxSide` px. */
export async function compressPhoto(file, { maxSide = MAX_SIDE, quality = QUALITY } = {}) {
  let image;
  try {
    image = await decode(file);
  } catch {
    throw new Error("无法读取这张照片，请选择 JPG 或 PNG 格式的照片，或重新拍摄");
  }
  const width = image.width || image.naturalWidth, height = image.height || image.naturalHeight;
  const scale = Math.min(1, maxSide / Math.max(width, height));
  const canvas = document.createElement("canvas");
  canvas.width = Math.max(1, Math.round(width * scale));
  canvas.height = Math.max(1, Math.round(height * scale));
  const g = canvas.getContext("2d");
  g.fillStyle = "#fff";
  g.fillRect(0, 0, canvas.width, canvas.height);
  g.drawImage(image, 0, 0, canvas.width, canvas.height);
  if (image.close) image.close();
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", quality));
  if (!blob) throw new Error("照片压缩失败，请重试");
  return blob;
}
