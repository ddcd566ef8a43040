"""Photo attachments: size-limited, type sniffed from the bytes (never trusted from the client)."""

from __future__ import annotations

from dispatch.errors import ApiError, bad_request

MAX_BYTES = 5 * 1024 * 1024

# Magic numbers of the image types the phones and the browser compressor produce.
_SIGNATURES = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
)


def sniff_image_type(data: bytes) -> str | None:
    for signature, mime in _SIGNATURES:
        if data.startswith(signature):
            return mime
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def check_upload(data: bytes) -> str:
    """The sniffed MIME type of an acceptable photo, or a 4xx ApiError."""
    if not data:
        raise bad_request("上传内容为空", code="empty_upload")
    if len(data) > MAX_BYTES:
        raise ApiError(413, "attachment_too_large", f"照片过大（上限 {MAX_BYTES // 1024 // 1024} MB）")
    mime = sniff_image_type(data)
    if mime is None:
        raise ApiError(415, "unsupported_media_type", "只接受 JPEG、PNG 或 WebP 格式的照片")
    return mime
