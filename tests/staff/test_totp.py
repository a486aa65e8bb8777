"""TOTP against the published test vectors (RFC 4226 appendix D, RFC 6238 appendix B), and its rules:
clock-drift window, each code once, the otpauth URI authenticator apps read."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest

from quanyi.staff import totp

SHA1_SECRET = b"12345678901234567890"
SECRETS = {"SHA1": SHA1_SECRET, "SHA256": b"12345678901234567890123456789012",
           "SHA512": b"1234567890123456789012345678901234567890123456789012345678901234"}

RFC6238 = [
    (59, "94287082", "SHA1"), (59, "46119246", "SHA256"), (59, "90693936", "SHA512"),
    (1111111109, "07081804", "SHA1"), (1111111109, "68084774", "SHA256"), (1111111109, "25091201", "SHA512"),
    (1111111111, "14050471", "SHA1"), (1111111111, "67062674", "SHA256"), (1111111111, "99943326", "SHA512"),
    (1234567890, "89005924", "SHA1"), (1234567890, "91819424", "SHA256"), (1234567890, "93441116", "SHA512"),
    (2000000000, "69279037", "SHA1"), (2000000000, "90698825", "SHA256"), (2000000000, "38618901", "SHA512"),
    (20000000000, "65353130", "SHA1"), (20000000000, "77737706", "SHA256"), (20000000000, "47863826", "SHA512"),
]
RFC4226 = ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"]


@pytest.mark.parametrize(("unix_time", "expected", "algorithm"), RFC6238)
def test_rfc6238_vectors(unix_time: int, expected: str, algorithm: str) -> None:
    assert totp.totp(SECRETS[algorithm], unix_time, digits=8, algorithm=algorithm) == expected


def test_rfc4226_hotp_vectors() -> None:
    assert [totp.hotp(SHA1_SECRET, counter) for counter in range(10)] == RFC4226


def test_a_code_matches_its_step_and_one_step_either_side_but_not_further_or_twice() -> None:
    now = 1_700_000_000.0
    step = totp.time_step(now)
    code = totp.totp(SHA1_SECRET, now)
    assert totp.matching_step(SHA1_SECRET, code, now) == step
    assert totp.matching_step(SHA1_SECRET, code, now + 30) == step  # the phone's clock is 30 s behind
    assert totp.matching_step(SHA1_SECRET, code, now - 30) == step  # ... or ahead
    assert totp.matching_step(SHA1_SECRET, code, now + 90) is None
    assert totp.matching_step(SHA1_SECRET, code, now, after_step=step) is None  # already used
    assert totp.matching_step(SHA1_SECRET, f" {code[:3]} {code[3:]} ", now) == step  # as people type it
    for wrong in ("", "12345", "1234567", "abcdef", str((int(code) + 1) % 10**6).zfill(6)):
        assert totp.matching_step(SHA1_SECRET, wrong, now) is None


def test_provisioning_uri_follows_the_key_uri_format() -> None:
    uri = totp.provisioning_uri(SHA1_SECRET, account="alice", issuer="权益商城")
    parsed = urlparse(uri)
    assert (parsed.scheme, parsed.netloc) == ("otpauth", "totp")
    assert parsed.path == "/%E6%9D%83%E7%9B%8A%E5%95%86%E5%9F%8E%3Aalice"
    query = parse_qs(parsed.query)
    assert query["secret"] == ["GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"]  # base32 of the RFC secret
    assert query["issuer"] == ["权益商城"] and query["digits"] == ["6"] and query["period"] == ["30"]
    assert totp.secret_from_base32("gezd gnbv gy3t qojq gezd gnbv gy3t qojq") == SHA1_SECRET
