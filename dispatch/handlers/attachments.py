"""POST /api/attachments (raw image body) and GET /api/attachments/{id}."""

from __future__ import annotations

from dispatch.intake.attachments import ID_PATTERN, MAX_BYTES, check_upload, store_upload
from dispatch.errors import not_found
from dispatch.handlers.base import BaseHandler
from dispatch.access.policy import case_scope


class AttachmentsHandler(BaseHandler):
    access = {"POST": ("attachment", "create")}
    # Photos are bigger than JSON bodies: checked against the photo limit instead.
    body_limit = MAX_BYTES
    body_too_large = ("attachment_too_large", "照片过大（上限 {mb} MB）")

    async def post(self):
        user = self.require_user()  # roles: ("attachment", "create") in dispatch.access.policy
        data = self.request.body
        mime = check_upload(data)
        doc = await store_upload(self.ctx, user.username, data, mime, self.ctx.clock.now())
        self.send({"id": doc["_id"], "content_type": mime, "size": len(data),
                   "url": f"/api/attachments/{doc['_id']}"}, 201)


class AttachmentHandler(BaseHandler):
    access = {"GET": ("attachment", "read")}

    async def get(self, attachment_id: str):
        user = self.require_user()
        doc = await self.ctx.attachments.get(attachment_id)
        visible = doc is not None and (
            doc["owner"] == user.username
            or await self.ctx.attachments.case_using(attachment_id, case_scope(user, self.ctx.city.id))
        )
        if not visible:
            raise not_found("照片不存在或不在您的权限范围内", code="attachment_not_found")
        self.set_header("Content-Type", doc["content_type"])
        self.set_header("Cache-Control", "private, max-age=86400")
        self.set_header("Content-Security-Policy", "default-src 'none'; sandbox")
        self.finish(bytes(doc["data"]))


routes = [
    (r"/api/attachments", AttachmentsHandler),
    (rf"/api/attachments/({ID_PATTERN})", AttachmentHandler),
]
