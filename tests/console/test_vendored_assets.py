"""Browser assets are served by the shop itself: each vendored file matches the sha256 scripts/vendor.sh
recorded, its licence travels with it, and the console pages load nothing from elsewhere."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

import quanyi

VENDOR = Path(quanyi.__file__).parent / "web" / "static" / "vendor"


def test_vendored_files_match_their_recorded_hashes_and_carry_their_licences():
    recorded = re.findall(r"^  (\S+) sha256 ([0-9a-f]{64})$", (VENDOR / "VENDORED.txt").read_text(), re.M)
    assert {name for name, _ in recorded} >= {"echarts/echarts.min.js", "echarts/LICENSE", "echarts/NOTICE"}
    for name, digest in recorded:
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name
    assert "Apache License" in (VENDOR / "echarts" / "LICENSE").read_text()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_console_pages_use_only_the_shops_own_assets(client):
    page = await client.get("/console/login")
    assert "Content-Security-Policy" in page.headers and "default-src 'self'" in page.headers["content-security-policy"]
    for url in re.findall(r'(?:src|href)="([^"]+)"', page.text):
        assert not url.startswith(("http:", "https:", "//")), url
    served = await client.get("/static/vendor/echarts/echarts.min.js")
    assert served.status_code == 200 and len(served.content) > 500_000
