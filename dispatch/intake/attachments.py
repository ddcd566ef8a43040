"""Photo attachments: size-limited, type sniffed from the bytes (never trusted from the client),
random ids, attached only by their uploader, and bounded: a user's uploads no case refers to are
limited by a quota and deleted after a while."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from dispatch.errors import ApiError, bad_request, unprocessable

MAX_BYTES = 5 * 1024 * 1024
# Random, not a counter: an id must not be guessable from another one (≥ 128 bits; 32 characters).
ID_BYTES = 24
# Route pattern for an attachment id: today's random ids and the 24-hex ObjectIds of older uploads.
ID_PATTERN = r"[A-Za-z0-9_-]{24,64}"
EXPIRE_BATCH = 500

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


def new_attachment_id() -> str:
    return secrets.token_urlsafe(ID_BYTES)


def _settings(ctx) -> dict:
    return ctx.config.get("attachments") or {}


async def store_upload(ctx, owner: str, data: bytes, mime: str, now: datetime) -> dict:
    """Store a checked photo for `owner`, or 429 when their unused uploads are over the quota.

    Stored first and counted after, the new one included: concurrent uploads cannot all slip
    under the limit (over it, each removes itself again).
    """
    settings = _settings(ctx)
    doc = {
        "_id": new_attachment_id(),
        "owner": owner,
        "content_type": mime,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "data": data,
        "created_at": now,
        "referenced": False,
    }
    await ctx.attachments.insert(doc)
    max_count = int(settings.get("pending_max_count", 30))
    max_mb = float(settings.get("pending_max_mb", 30))
    hours = float(settings.get("pending_window_hours", 24))
    count, size = await ctx.attachments.pending_usage(owner, now - timedelta(hours=hours))
    if count > max_count or size > max_mb * 1024 * 1024:
        await ctx.attachments.delete([doc["_id"]])
        raise ApiError(
            429, "upload_quota_exceeded",
            f"{hours:g} 小时内上传但尚未用于案件的照片已达上限（最多 {max_count} 张、{max_mb:g} MB），"
            "请先提交已上传照片的案件，或稍后再试",
        )
    return doc


async def check_photos(ctx, user, photos: list[str] | None, field: str = "photos") -> None:
    """Photos attached to a case (a report, a feedback, a check) must be uploads of this user:
    an id is not proof of access, and attaching a photo makes it readable to the case's readers."""
    if not photos:
        return
    owned = await ctx.attachments.owned_by(photos, user.username)
    missing = [p for p in photos if p not in owned]
    if missing:
        raise unprocessable(f"照片 {', '.join(missing)} 不存在或不是您上传的", code="unknown_attachment",
                            field=field)


async def expire_unreferenced(ctx, now: datetime) -> int:
    """Delete uploads no case refers to, older than `attachments.expire_unreferenced_hours`.

    The `referenced` flag only narrows the search: before deleting, the cases are asked, so a
    photo whose case write set no flag (an older upload, a crash between the two) is kept and
    flagged instead. Returns how many were deleted. The scheduler calls this periodically.
    """
    hours = float(_settings(ctx).get("expire_unreferenced_hours", 24))
    cutoff = now - timedelta(hours=hours)
    store, deleted = ctx.attachments, 0
    while True:
        ids = await store.unreferenced_before(cutoff, EXPIRE_BATCH)
        used = [i for i in ids if await store.in_use(i)]
        await store.mark_referenced(used)
        deleted += await store.delete([i for i in ids if i not in used])
        if len(ids) < EXPIRE_BATCH:
            return deleted
