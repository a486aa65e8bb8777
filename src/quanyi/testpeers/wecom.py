"""TEST PEER — a WeCom (企业微信) OAuth simulator (never point a real shop at it).

Plays both sides WeCom has in a web login (网页授权登录), with the published wire format
(developer.work.weixin.qq.com, "构造网页授权链接", "获取access_token", "获取访问用户身份"):

- the browser side: `GET /connect/oauth2/authorize?appid=CORPID&redirect_uri=...&response_type=code
  &scope=snsapi_base&state=STATE&agentid=AGENTID` redirects at once to `redirect_uri?code=CODE&state=STATE`
  as the member `signed_in` of the simulated WeCom app (set by the test; nobody signed in: an error page);
- the server side: `GET /cgi-bin/gettoken?corpid=&corpsecret=` → `{"errcode":0,"errmsg":"ok",
  "access_token":...,"expires_in":7200}` (wrong corp or secret: errcode 40013 / 40001), and
  `GET /cgi-bin/auth/getuserinfo?access_token=&code=` → `{"errcode":0,"errmsg":"ok","userid":...}` for a member,
  `{"errcode":0,...,"openid":...}` for an outsider; a code works once, for 5 minutes (else errcode 40029), a bad
  or expired token is errcode 40014 / 42001. WeCom answers errors with HTTP 200 and an errcode, like this.

    python -m quanyi.testpeers.wecom --port 12131 --corp-id ww0001 --secret s3cret
"""

from __future__ import annotations

import argparse
import secrets
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

__all__ = ["WeComSimulator"]

TOKEN_SECONDS = 7200
CODE_SECONDS = 300


@dataclass
class WeComSimulator:
    corp_id: str = "ww" + "0" * 16
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    agent_id: str = "1000002"
    members: set[str] = field(default_factory=set)  # user ids of the corp's members
    signed_in: str | None = None  # who is using the WeCom app on the "phone" (a member id or an outsider)
    calls: list[str] = field(default_factory=list)
    _codes: dict[str, tuple[str, float]] = field(default_factory=dict)
    _tokens: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def expire_tokens(self) -> None:
        with self._lock:
            self._tokens = {token: 0.0 for token in self._tokens}

    def issue_code(self, user: str) -> str:
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = (user, time.time() + CODE_SECONDS)
        return code

    @property
    def app(self) -> FastAPI:
        app = FastAPI(title="WeCom simulator (TEST PEER)", docs_url=None, redoc_url=None, openapi_url=None)

        @app.get("/connect/oauth2/authorize")
        async def authorize(request: Request) -> Response:
            q = request.query_params
            self.calls.append("authorize")
            if q.get("appid") != self.corp_id or q.get("response_type") != "code" or not q.get("redirect_uri"):
                return HTMLResponse("<p>参数错误 (invalid appid, redirect_uri or response_type)</p>", 400)
            if self.signed_in is None:
                return HTMLResponse("<p>请在企业微信客户端打开链接</p>", 403)
            code = self.issue_code(self.signed_in)
            sep = "&" if "?" in q["redirect_uri"] else "?"
            return RedirectResponse(q["redirect_uri"] + sep + urlencode({"code": code, "state": q.get("state", "")}),
                                    status_code=302)

        @app.get("/cgi-bin/gettoken")
        async def gettoken(corpid: str = "", corpsecret: str = "") -> JSONResponse:
            self.calls.append("gettoken")
            if corpid != self.corp_id:
                return JSONResponse({"errcode": 40013, "errmsg": "invalid corpid"})
            if not secrets.compare_digest(corpsecret.encode(), self.secret.encode()):
                return JSONResponse({"errcode": 40001, "errmsg": "invalid credential"})
            token = secrets.token_urlsafe(48)
            with self._lock:
                self._tokens[token] = time.time() + TOKEN_SECONDS
            return JSONResponse({"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": TOKEN_SECONDS})

        @app.get("/cgi-bin/auth/getuserinfo")
        async def getuserinfo(access_token: str = "", code: str = "") -> JSONResponse:
            self.calls.append("getuserinfo")
            with self._lock:
                expires = self._tokens.get(access_token)
                if expires is None:
                    return JSONResponse({"errcode": 40014, "errmsg": "invalid access_token"})
                if expires < time.time():
                    return JSONResponse({"errcode": 42001, "errmsg": "access_token expired"})
                found = self._codes.pop(code, None)  # a code works once
            if found is None or found[1] < time.time():
                return JSONResponse({"errcode": 40029, "errmsg": "invalid code"})
            user = found[0]
            if user in self.members:
                return JSONResponse({"errcode": 0, "errmsg": "ok", "userid": user,
                                     "user_ticket": secrets.token_urlsafe(32)})
            return JSONResponse({"errcode": 0, "errmsg": "ok", "openid": "o" + user,
                                 "external_userid": "wm" + user})

        return app


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="WeCom OAuth simulator (TEST PEER)")
    parser.add_argument("--port", type=int, default=12131)
    parser.add_argument("--corp-id", default="ww" + "0" * 16)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--member", action="append", default=[], help="a member's user id (repeatable)")
    parser.add_argument("--signed-in", default=None, help="who uses the simulated WeCom app")
    args = parser.parse_args()
    peer = WeComSimulator(corp_id=args.corp_id, secret=args.secret, members=set(args.member),
                          signed_in=args.signed_in)
    uvicorn.run(peer.app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
