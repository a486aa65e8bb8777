"""TEST PEER — a DingTalk (钉钉) OAuth 2.0 simulator (never point a real shop at it).

Plays both sides of DingTalk's web login with the published wire format (open.dingtalk.com, "实现登录第三方网站",
"获取用户token" and "获取用户通讯录个人信息"):

- the browser side: `GET /oauth2/auth?redirect_uri=...&response_type=code&client_id=...&scope=openid&state=...
  &prompt=consent` redirects at once to `redirect_uri?authCode=CODE&state=STATE` as the user `signed_in`
  (set by the test; nobody: an error page);
- the server side: `POST /v1.0/oauth2/userAccessToken` with JSON `{"clientId","clientSecret","code",
  "grantType":"authorization_code"}` → `{"accessToken","refreshToken","expireIn":7200,"corpId"}`; a wrong client
  or a used / unknown code: HTTP 400 `{"code": "...", "message": "..."}`; and `GET /v1.0/contact/users/me` with
  the header `x-acs-dingtalk-access-token` → `{"nick","avatarUrl","mobile","openId","unionId","email",
  "stateCode"}` (a bad token: HTTP 401).

    python -m quanyi.testpeers.dingtalk --port 12132 --client-id dingabc --client-secret s3cret
"""

from __future__ import annotations

import argparse
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

__all__ = ["DingTalkSimulator", "DingTalkUser"]

TOKEN_SECONDS = 7200
CODE_SECONDS = 300


@dataclass(frozen=True)
class DingTalkUser:
    union_id: str
    nick: str
    mobile: str = ""
    state_code: str = "86"
    email: str = ""


@dataclass
class DingTalkSimulator:
    client_id: str = "ding" + "0" * 16
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    corp_id: str = "ding" + "c" * 16
    signed_in: DingTalkUser | None = None
    calls: list[str] = field(default_factory=list)
    _codes: dict[str, tuple[DingTalkUser, float]] = field(default_factory=dict)
    _tokens: dict[str, tuple[DingTalkUser, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def issue_code(self, user: DingTalkUser) -> str:
        code = secrets.token_hex(16)
        with self._lock:
            self._codes[code] = (user, time.time() + CODE_SECONDS)
        return code

    @staticmethod
    def _error(status: int, code: str, message: str) -> JSONResponse:
        return JSONResponse({"requestid": secrets.token_hex(8), "code": code, "message": message}, status)

    @property
    def app(self) -> FastAPI:
        app = FastAPI(title="DingTalk simulator (TEST PEER)", docs_url=None, redoc_url=None, openapi_url=None)

        @app.get("/oauth2/auth")
        async def auth(request: Request) -> Response:
            q = request.query_params
            self.calls.append("auth")
            if q.get("client_id") != self.client_id or q.get("response_type") != "code" or not q.get("redirect_uri"):
                return HTMLResponse("<p>参数错误 (invalid client_id, redirect_uri or response_type)</p>", 400)
            if self.signed_in is None:
                return HTMLResponse("<p>请使用钉钉扫码登录</p>", 403)
            code = self.issue_code(self.signed_in)
            sep = "&" if "?" in q["redirect_uri"] else "?"
            query = urlencode({"authCode": code, "state": q.get("state", "")})
            return RedirectResponse(q["redirect_uri"] + sep + query, status_code=302)

        @app.post("/v1.0/oauth2/userAccessToken")
        async def user_access_token(request: Request) -> JSONResponse:
            self.calls.append("userAccessToken")
            try:
                body: dict[str, Any] = await request.json()
            except ValueError:
                return self._error(400, "MissingParameter", "body must be JSON")
            if body.get("clientId") != self.client_id or not secrets.compare_digest(
                    str(body.get("clientSecret", "")).encode(), self.client_secret.encode()):
                return self._error(400, "invalidClientIdOrSecret", "无效的clientId或者clientSecret")
            if body.get("grantType") != "authorization_code":
                return self._error(400, "invalidParameter.grantType", "grantType is invalid")
            with self._lock:
                found = self._codes.pop(str(body.get("code", "")), None)  # a code works once
            if found is None or found[1] < time.time():
                return self._error(400, "invalidParameter.authCode.notFound", "不合法的临时授权码")
            token = secrets.token_hex(16)
            with self._lock:
                self._tokens[token] = (found[0], time.time() + TOKEN_SECONDS)
            return JSONResponse({"accessToken": token, "refreshToken": secrets.token_hex(16),
                                 "expireIn": TOKEN_SECONDS, "corpId": self.corp_id})

        @app.get("/v1.0/contact/users/me")
        async def me(request: Request) -> JSONResponse:
            self.calls.append("users/me")
            with self._lock:
                found = self._tokens.get(request.headers.get("x-acs-dingtalk-access-token", ""))
            if found is None or found[1] < time.time():
                return self._error(401, "InvalidAuthentication", "不合法的access_token")
            user = found[0]
            return JSONResponse({"nick": user.nick, "avatarUrl": "", "mobile": user.mobile,
                                 "openId": "open" + user.union_id, "unionId": user.union_id, "email": user.email,
                                 "stateCode": user.state_code})

        return app


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="DingTalk OAuth simulator (TEST PEER)")
    parser.add_argument("--port", type=int, default=12132)
    parser.add_argument("--client-id", default="ding" + "0" * 16)
    parser.add_argument("--client-secret", required=True)
    args = parser.parse_args()
    peer = DingTalkSimulator(client_id=args.client_id, client_secret=args.client_secret)
    uvicorn.run(peer.app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
