"""WeChat Pay v3 signature rules against the spec's published examples, and checked with independently
written cryptography calls (the spec publishes strings, not a key, so no signature vector exists)."""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import ValidationError

from quanyi.payments.wechat import WechatConfig, signing
from quanyi.testpeers.wechat import WechatPaySimulator, new_rsa_key, pem_private, pem_public
from quanyi.testpeers.wechat_wire import platform_certificate


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return new_rsa_key()


def test_request_message_matches_the_spec_example():
    # 签名生成, 第一步 example: GET /v3/certificates, timestamp 1554208460, nonce 593BEC0C930BF1AFEB40B4A08C8FB242.
    message = signing.request_message("GET", "/v3/certificates", "1554208460", "593BEC0C930BF1AFEB40B4A08C8FB242", "")
    assert message == b"GET\n/v3/certificates\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n\n"
    post = signing.request_message("post", "/v3/pay/transactions/native?x=1", "1", "N", '{"a":"中"}')
    assert post == 'POST\n/v3/pay/transactions/native?x=1\n1\nN\n{"a":"中"}\n'.encode()


def test_authorization_header_has_the_spec_layout():
    header = signing.authorization(mchid="1900009191", serial_no="1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C",
                                   nonce="593BEC0C930BF1AFEB40B4A08C8FB242", timestamp="1554208460",
                                   signature="c2lnbmF0dXJl")
    assert header == ('WECHATPAY2-SHA256-RSA2048 mchid="1900009191",nonce_str="593BEC0C930BF1AFEB40B4A08C8FB242",'
                      'signature="c2lnbmF0dXJl",timestamp="1554208460",'
                      'serial_no="1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C"')


def test_signature_is_rsassa_pkcs1v15_sha256_and_verifies_only_the_same_message(key):
    message = signing.request_message("GET", "/v3/certificates", "1554208460", "593BEC0C930BF1AFEB40B4A08C8FB242", "")
    signature = signing.sign(message, key)
    key.public_key().verify(base64.b64decode(signature), message, padding.PKCS1v15(), hashes.SHA256())
    assert signature == signing.sign(message, key)  # PKCS#1 v1.5 is deterministic
    assert signing.verify(message, signature, key.public_key())
    assert not signing.verify(message + b"x", signature, key.public_key())
    assert not signing.verify(message, signature, new_rsa_key().public_key())
    for junk in ("", "not base64!", "WECHATPAY/SIGNTEST/" + signature, "中文"):
        assert not signing.verify(message, junk, key.public_key())


def test_answer_message_keeps_the_body_bytes_exactly():
    assert signing.answer_message("1554209980", "c5ac7061fccab6bf3e254dcf98995b8c", b'{"a":1}') == (
        b'1554209980\nc5ac7061fccab6bf3e254dcf98995b8c\n{"a":1}\n')


def test_resource_decryption_is_aes_256_gcm_with_the_apiv3_key():
    apiv3_key = b"0123456789abcdef0123456789ABCDEF"
    sealed = base64.b64encode(AESGCM(apiv3_key).encrypt(b"fdasflkja484", b'{"ok":true}', b"transaction")).decode()
    assert signing.decrypt_resource(key=apiv3_key, nonce="fdasflkja484", ciphertext=sealed,
                                    associated_data="transaction") == b'{"ok":true}'
    tampered = base64.b64encode(bytes([base64.b64decode(sealed)[0] ^ 1]) + base64.b64decode(sealed)[1:]).decode()
    for kwargs in ({"ciphertext": tampered}, {"associated_data": "certificate"}, {"nonce": "fdasflkja485"},
                   {"ciphertext": "%%%"}):
        arguments = {"key": apiv3_key, "nonce": "fdasflkja484", "ciphertext": sealed,
                     "associated_data": "transaction", **kwargs}
        with pytest.raises(signing.SignatureError):
            signing.decrypt_resource(**arguments)


def test_config_refuses_unusable_keys():
    good = WechatPaySimulator().merchant_config("https://api.mch.weixin.qq.com")
    config = WechatConfig(**good)
    assert "PRIVATE KEY" not in repr(config) and good["apiv3_key"] not in repr(config)
    assert WechatConfig(**{k: v for k, v in good.items() if k != "base_url"}).base_url == (
        "https://api.mch.weixin.qq.com")
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    for field, value, why in [
        ("apiv3_key", "x" * 31, "32 ASCII"), ("apiv3_key", "密" * 32, "32 ASCII"),
        ("merchant_private_key", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----", "PEM private"),
        ("merchant_private_key", pem_private(weak), "2048"), ("platform_public_key", pem_public(weak), "2048"),
        ("platform_public_key", good["merchant_private_key"], "PEM public"),
        ("mchid", "19000x", "pattern"), ("base_url", "ftp://x", "pattern"),
    ]:
        with pytest.raises(ValidationError, match=why):
            WechatConfig(**{**good, field: value})


def _certificate(key: rsa.RSAPrivateKey, *, days_left: float, serial: int = 0x5157F09EFDC096DE15EBE81A47057A7232F1B8E1,
                 starts_in_days: float = -30) -> str:
    now = dt.datetime.now(dt.UTC)
    return platform_certificate(key, serial=serial, not_before=now + dt.timedelta(days=starts_in_days),
                                not_after=now + dt.timedelta(days=days_left))


def test_platform_certificate_is_loaded_with_its_serial_and_validated(key):
    """Merchants still on platform certificates (平台证书) paste the certificate itself: the serial and the key come
    from it; it must be PEM X.509 with an RSA key of at least 2048 bits and valid now."""
    base = {k: v for k, v in WechatPaySimulator().merchant_config("https://api.mch.weixin.qq.com").items()
            if not k.startswith("platform_public_key")}
    pem = _certificate(key, days_left=365)
    config = WechatConfig(**base, platform_certificate=pem)
    assert config.platform_public_key is None
    [loaded] = signing.load_platform_certificates(pem, now=dt.datetime.now(dt.UTC))
    assert loaded.serial == "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
    assert loaded.public_key.public_numbers() == key.public_key().public_numbers()
    # A header names it in upper- or lower-case hex, with or without leading zeros.
    assert signing.certificate_serial("005157f09efdc096de15ebe81a47057a7232f1b8e1") == loaded.serial
    assert signing.certificate_serial("PUB_KEY_ID_0114") == "PUB_KEY_ID_0114"
    # Two certificates in one file (a rotation) are both loaded.
    other = new_rsa_key()
    both = signing.load_platform_certificates(pem + _certificate(other, days_left=700, serial=0xABC),
                                              now=dt.datetime.now(dt.UTC))
    assert [c.serial for c in both] == [loaded.serial, "ABC"]

    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    for certificate, why in [
        (_certificate(key, days_left=-1), "expired on"),
        (_certificate(key, days_left=30, starts_in_days=2), "not valid before"),
        (_certificate(weak, days_left=30), "2048"),
        (pem_public(key), "PEM X.509"),
        ("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----", "PEM X.509"),
        (pem + pem, "twice"),
    ]:
        with pytest.raises(ValidationError, match=why):
            WechatConfig(**base, platform_certificate=certificate)
    with pytest.raises(ValidationError, match="go together"):
        WechatConfig(**base, platform_public_key=pem_public(key))
    with pytest.raises(ValidationError, match="platform certificate"):
        WechatConfig(**base)
