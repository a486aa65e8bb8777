"""Alipay RSA2 signing rules, amounts and times: the documented canonical string, signatures checked
against an independent implementation (the openssl command line), raw-response extraction, key formats."""

from __future__ import annotations

import base64
import datetime as dt
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from quanyi.payments.alipay.protocol import clean_subject, format_time, format_yuan, parse_time, parse_yuan
from quanyi.payments.alipay.signing import (
    InvalidKey,
    canonical_string,
    load_private_key,
    load_public_key,
    response_sign_source,
    sign_params,
    sign_text,
    verify_params,
    verify_text,
)


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_canonical_string_matches_the_documented_example():
    # 支付宝开放平台 "自行实现签名": parameters sorted by name, empty ones and `sign` left out, values raw.
    params = {
        "method": "alipay.mobile.public.menu.add", "timestamp": "2014-07-24 03:07:50", "app_id": "2014072300007148",
        "charset": "GBK", "sign_type": "RSA2", "version": "1.0", "sign": "ignored", "notify_url": "",
        "biz_content": '{"button":[{"actionParam":"ZFB_HFCZ","actionType":"out","name":"话费充值"}]}',
    }
    assert canonical_string(params) == (
        'app_id=2014072300007148&biz_content={"button":[{"actionParam":"ZFB_HFCZ","actionType":"out",'
        '"name":"话费充值"}]}&charset=GBK&method=alipay.mobile.public.menu.add&sign_type=RSA2'
        "&timestamp=2014-07-24 03:07:50&version=1.0")


def test_notification_verification_leaves_out_sign_type(key):
    params = {"total_amount": "19.80", "out_trade_no": "PY1", "notify_time": "2024-05-01 12:00:00",
              "sign_type": "RSA2"}
    params["sign"] = sign_text("notify_time=2024-05-01 12:00:00&out_trade_no=PY1&total_amount=19.80", key)
    assert verify_params(params, key.public_key(), notification=True)
    assert not verify_params(params, key.public_key(), notification=False)  # requests do sign sign_type
    assert not verify_params({**params, "total_amount": "0.01"}, key.public_key())
    assert not verify_params({**params, "sign": "not base64!"}, key.public_key())


def _sdk_sign_content(params: dict[str, str]) -> str:
    """What the SDKs verify a notification against, written out independently: python-alipay-sdk `AliPay.verify`
    pops `sign` and `sign_type` and joins every other item sorted by key; the official SDK's `get_sign_content`
    joins every item it is given. Empty values stay in."""
    rest = {k: v for k, v in params.items() if k not in ("sign", "sign_type")}
    return "&".join(f"{k}={v}" for k, v in sorted(rest.items()))


def test_notifications_are_verified_over_every_parameter_including_empty_ones(key):
    params = {"notify_time": "2024-05-01 12:00:00", "out_trade_no": "PY1", "total_amount": "19.80", "body": "",
              "passback_params": "", "sign_type": "RSA2", "trade_status": "TRADE_SUCCESS"}
    assert _sdk_sign_content(params) == ("body=&notify_time=2024-05-01 12:00:00&out_trade_no=PY1&passback_params="
                                         "&total_amount=19.80&trade_status=TRADE_SUCCESS")
    params["sign"] = sign_text(_sdk_sign_content(params), key)
    assert verify_params(params, key.public_key(), notification=True)
    # Signed without the empty values (the old, wrong rule): not Alipay's signature, refused.
    wrong = {**params, "sign": sign_text(canonical_string(params, exclude=frozenset({"sign", "sign_type"})), key)}
    assert not verify_params(wrong, key.public_key(), notification=True)


def test_requests_never_carry_an_empty_parameter(key):
    """Alipay checks requests without empty values (自行实现签名) while the SDKs sign what they send: a request
    without empty parameters means the same string under both rules."""
    from quanyi.payments.alipay.gateway import AlipayConfig, AlipayGateway

    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    gateway = AlipayGateway(AlipayConfig(app_id="2021000000000001", merchant_private_key=pem,
                                         alipay_public_key=public), http=None)  # type: ignore[arg-type]
    params = gateway._signed("alipay.trade.query", {"out_trade_no": "PY1"}, notify_url="", return_url="")
    assert "" not in params.values()
    sdk_text = "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k != "sign")
    assert verify_text(sdk_text, params["sign"], key.public_key())
    assert verify_params(params, key.public_key(), notification=False)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command line")
def test_signatures_agree_with_openssl(key, tmp_path: Path):
    """PKCS#1 v1.5 is deterministic: openssl must produce the very same signature, and accept ours."""
    key_file, pub_file, data_file, sig_file = (tmp_path / n for n in ("k.pem", "p.pem", "d.txt", "s.bin"))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    pub_file.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo))
    params = {"app_id": "2021000000000001", "method": "alipay.trade.query", "charset": "utf-8",
              "sign_type": "RSA2", "timestamp": "2024-05-01 12:00:00", "version": "1.0",
              "biz_content": '{"out_trade_no":"PY1","subject":"会员 月卡"}'}
    data_file.write_bytes(canonical_string(params).encode("utf-8"))
    theirs = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(key_file), str(data_file)],
                            check=True, capture_output=True).stdout
    ours = sign_params(params, key)
    assert ours == base64.b64encode(theirs).decode()
    sig_file.write_bytes(base64.b64decode(ours))
    checked = subprocess.run(["openssl", "dgst", "-sha256", "-verify", str(pub_file), "-signature", str(sig_file),
                              str(data_file)], capture_output=True, text=True)
    assert checked.returncode == 0 and "Verified OK" in checked.stdout


def test_response_sign_source_is_the_raw_text_of_each_member():
    body = ('{ "alipay_trade_query_response" : {"code":"10000","msg":"Success","qr":"https:\\/\\/x",'
            '"n":"中文"} ,\n"sign":"abc"}')
    members = response_sign_source(body)
    assert members["alipay_trade_query_response"] == '{"code":"10000","msg":"Success","qr":"https:\\/\\/x","n":"中文"}'
    assert json.loads(members["sign"]) == "abc"
    assert response_sign_source("{}") == {}
    for junk in ("", "[]", '{"a":1} x', '{"a":1,"a":2}', '{"a" 1}', '{"a":1,}', "null", '{"a":}'):
        with pytest.raises(ValueError):
            response_sign_source(junk)


def test_a_signature_over_the_escaped_or_reserialised_text_differs(key):
    raw = '{"code":"10000","qr_code":"https://qr.alipay.com/x"}'
    sign = sign_text(raw, key)
    assert verify_text(raw, sign, key.public_key())
    assert not verify_text(json.dumps(json.loads(raw)), sign, key.public_key())  # re-serialised: other bytes


def test_keys_load_from_pem_and_bare_base64_and_weak_ones_are_refused(key):
    pkcs8 = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
    pkcs1 = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL,
                              serialization.NoEncryption())
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    for der in (pkcs8, pkcs1):
        assert load_private_key(base64.b64encode(der).decode()).private_numbers() == key.private_numbers()
    assert load_public_key(base64.b64encode(spki).decode()).public_numbers() == key.public_key().public_numbers()
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    weak_pem = weak.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()).decode()
    for bad in (weak_pem, "", "not a key", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"):
        with pytest.raises(InvalidKey):
            load_private_key(bad)
    with pytest.raises(InvalidKey):
        load_public_key(base64.b64encode(pkcs8).decode())  # a private key where the public one belongs


def test_yuan_amounts_parse_exactly():
    assert [parse_yuan(t) for t in ("19.80", "19.8", "0.01", "0", "100000000.00")] == [1980, 1980, 1, 0, 10_000_000_000]
    for junk in ("-1.00", "+1", "1.001", "1e3", " 1.00", "1,000.00", "", ".5", "01.00", "NaN", "１.00", "100000000.01"):
        with pytest.raises(ValueError):
            parse_yuan(junk)
    assert [format_yuan(c) for c in (1980, 1, 100)] == ["19.80", "0.01", "1.00"]
    for bad in (0, -5, 10_000_000_001):
        with pytest.raises(ValueError):
            format_yuan(bad)


def test_times_are_beijing_time():
    moment = dt.datetime(2024, 5, 1, 4, 0, 0, tzinfo=dt.UTC)
    assert format_time(moment) == "2024-05-01 12:00:00"
    assert parse_time("2024-05-01 12:00:00") == moment
    for junk in ("2024-05-01T12:00:00", "2024-05-01 12:00", "2024-13-01 12:00:00", "x"):
        with pytest.raises(ValueError):
            parse_time(junk)
    with pytest.raises(ValueError):
        format_time(dt.datetime(2024, 5, 1))


def test_subjects_lose_characters_alipay_refuses():
    assert clean_subject("Video VIP / 月卡 & more=1 x2") == "Video VIP 月卡 more 1 x2"
    assert len(clean_subject("长" * 300)) == 256
    assert clean_subject("///") == "order"
