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


TEMPLATES = Path(quanyi.__file__).parent / "web" / "templates"


def test_page_templates_carry_no_inline_style_or_script_the_csp_would_block():
    """The pages' CSP allows styles and scripts from the shop's files only (`style-src 'self'`): an inline
    style="…" is dropped by the browser (with a console error), so a width set that way never applies."""
    found = []
    for template in sorted(TEMPLATES.rglob("*.html")):
        text = template.read_text()
        found += [f"{template.relative_to(TEMPLATES)}: {m}" for m in re.findall(
            r'\sstyle="[^"]*"|\son[a-z]+="[^"]*"|<script(?![^>]*\ssrc=)(?![^>]*application/json)[^>]*>', text)]
    assert found == []


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_the_api_docs_pages_load_everything_from_the_shop(client):
    for path in ("/docs", "/redoc"):
        page = await client.get(path)
        assert page.status_code == 200
        urls = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert urls and not [u for u in urls if u.startswith(("http:", "https:", "//"))], (path, urls)
        for url in urls:
            assert (await client.get(url)).status_code == 200, url
        # ReDoc's bundle draws its maker's logo from a CDN: the page refuses any image from elsewhere.
        assert page.headers["content-security-policy"] == "img-src 'self' data:", path
    assert '"validatorUrl": null' in (await client.get("/docs")).text  # Swagger UI sends the spec nowhere
