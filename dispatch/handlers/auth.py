"""POST /api/login — password in, signed bearer token out."""

from tornado.ioloop import IOLoop

from dispatch import validation as v
from dispatch.auth import User, check_password
from dispatch.errors import unauthorized
from dispatch.handlers.base import BaseHandler


class LoginHandler(BaseHandler):
    async def post(self):
        body = self.json_body()
        username = v.text(body, "username", required=True, max_len=64, allow_empty=False)
        password = v.text(body, "password", required=True, max_len=256, allow_empty=False)
        doc = await self.ctx.users.get(username)
        # Hash even for unknown users so response time does not reveal which accounts exist.
        stored = doc["password_hash"] if doc else self.ctx.dummy_password_hash
        ok = await IOLoop.current().run_in_executor(None, check_password, password, stored)
        if not doc or not ok or doc.get("disabled"):
            raise unauthorized("用户名或密码错误", code="invalid_credentials")
        user = User.from_doc(doc)
        self.send({"token": self.ctx.tokens.issue(user.username), "expires_in": self.ctx.tokens.ttl,
                   "user": user.public()})


routes = [(r"/api/login", LoginHandler)]
