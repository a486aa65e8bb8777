"""The PHP example of docs/open-api.md, run with `php`: its signatures equal the Python client's (the documented
worked example, random requests, callbacks) and its callback check accepts ours and refuses a forged one."""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from quanyi.openapi_client import callback_signature, request_signature

DOC = Path(__file__).parents[2] / "docs" / "open-api.md"
HARNESS = r"""
$cases = json_decode(stream_get_contents(STDIN), true);
$out = [];
foreach ($cases['requests'] as $c) {
    $out['requests'][] = quanyi_sign($c['secret'], $c['method'], $c['path'], $c['timestamp'], $c['nonce'],
                                     base64_decode($c['body']));
}
foreach ($cases['callbacks'] as $c) {
    $body = base64_decode($c['body']);
    try {
        $event = quanyi_verify_callback($c['app_id'], $c['secret'], $c['headers'], $body);
        $out['callbacks'][] = $event['type'];
    } catch (RuntimeException $e) {
        $out['callbacks'][] = 'refused: ' . $e->getMessage();
    }
}
echo json_encode($out);
"""


def _php_block() -> str:
    match = re.search(r"```php\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert match, "docs/open-api.md has no php block"
    return match.group(1)


def test_the_documented_php_signs_exactly_like_the_python_client(tmp_path: Path):
    if shutil.which("php") is None:
        if os.environ.get("CI"):
            pytest.fail("php is not installed (.ci/run installs php-cli)")
        pytest.skip("php is not installed; the signing string is still pinned by the Python vector tests")
    script = tmp_path / "example.php"
    script.write_text(_php_block() + HARNESS, encoding="utf-8")
    requests = [{"secret": "s3cr3t-key", "method": "POST", "path": "/v1/card-orders", "timestamp": "1767225600",
                 "nonce": "0123456789abcdef0123456789abcdef",
                 "body": b'{"idempotency_key":"ord-1001-a1","product_code":"GIFT-100","quantity":2,'
                         b'"max_unit_cost_cents":9500}'}]
    for _ in range(20):
        requests.append({"secret": secrets.token_urlsafe(30), "method": secrets.choice(["GET", "POST", "put"]),
                         "path": f"/api/open/v1/orders/{secrets.token_hex(4)}?x={secrets.token_hex(2)}",
                         "timestamp": str(int(time.time())), "nonce": secrets.token_hex(16),
                         "body": json.dumps({"名": secrets.token_hex(8), "n": 1}, ensure_ascii=False).encode()})
    now = str(int(time.time()))
    body = b'{"event_id":"evt_1","type":"recharge.updated","data":{"state":"succeeded"}}'
    signature = callback_signature("k" * 40, timestamp=now, nonce="n" * 32, body=body)
    good = {"X-Quanyi-App-Id": "qyAPP", "X-Quanyi-Timestamp": now, "X-Quanyi-Nonce": "n" * 32,
            "X-Quanyi-Signature": signature}
    callbacks = [{"app_id": "qyAPP", "secret": "k" * 40, "headers": good, "body": body},
                 {"app_id": "qyAPP", "secret": "k" * 40, "headers": good, "body": body.replace(b"succ", b"fail")},
                 {"app_id": "qyAPP", "secret": "k" * 40, "headers": {**good, "X-Quanyi-Timestamp": "1"}, "body": body}]
    payload = {"requests": [{**r, "body": base64.b64encode(r["body"]).decode()} for r in requests],
               "callbacks": [{**c, "body": base64.b64encode(c["body"]).decode()} for c in callbacks]}
    run = subprocess.run(["php", str(script)], input=json.dumps(payload), capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    expected = [request_signature(r["secret"], method=r["method"], path=r["path"], timestamp=r["timestamp"],
                                  nonce=r["nonce"], body=r["body"]) for r in requests]
    assert out["requests"] == expected
    assert expected[0] == "b36f0b52bd31dcb9e107b176819b58f0e2737493a0df73ab3847a1f8ad5c5087"
    assert out["callbacks"][0] == "recharge.updated"
    assert out["callbacks"][1] == "refused: callback signature does not match"
    assert out["callbacks"][2].startswith("refused: callback timestamp")
