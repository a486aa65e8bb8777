"""A captcha provider as an operator would plug one in with QUANYI_RISK_CAPTCHA_VERIFIER (used by
test_captcha_setting.py): `risk.captcha_plugin:make_verifier`."""

from __future__ import annotations

GOOD_TOKENS = ("plugin-token-1", "plugin-token-2")
NOT_CALLABLE = 42


class OneTimeTokenCaptcha:
    """Accepts each known token once, from any address."""

    def __init__(self, tokens: tuple[str, ...]) -> None:
        self.tokens = set(tokens)
        self.seen: list[tuple[str, str]] = []

    async def verify(self, token: str, *, ip: str) -> bool:
        self.seen.append((token, ip))
        if token in self.tokens:
            self.tokens.discard(token)
            return True
        return False


def make_verifier() -> OneTimeTokenCaptcha:
    return OneTimeTokenCaptcha(GOOD_TOKENS)


def not_a_verifier() -> object:
    return object()


def broken_factory() -> OneTimeTokenCaptcha:
    raise RuntimeError("captcha service key missing")
