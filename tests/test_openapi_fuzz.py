"""Schemathesis against the shop's own OpenAPI document, over real HTTP, on a shop with demo data:
no endpoint answers 5xx, and every answer matches what the document promises (status, content type,
headers, body schema). Bounded: a fixed seed and a fixed example count per operation."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx

from quanyi.app import create_app
from quanyi.config import Settings
from quanyi.context import build_context
from quanyi.demo import load_demo
from quanyi.testpeers.runner import serve_in_thread

EXAMPLES = int(os.environ.get("QUANYI_FUZZ_EXAMPLES", "15"))
CHECKS = ",".join([
    "not_a_server_error", "response_schema_conformance", "content_type_conformance",
    "status_code_conformance", "response_headers_conformance",
])


async def _load_demo(settings: Settings) -> None:
    ctx = build_context(settings)
    try:
        await load_demo(ctx)
    finally:
        await ctx.close()


def test_openapi_document_documents_problem_responses(settings: Settings) -> None:
    app = create_app(settings)
    schema = app.openapi()
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            validation = operation["responses"]["422"]["content"]
            assert list(validation) == ["application/problem+json"], (method, path)


def test_schemathesis_finds_no_server_error_and_no_schema_violation(settings: Settings, tmp_path: Path) -> None:
    asyncio.run(_load_demo(settings))
    app = create_app(settings)  # owns its context; the server's lifespan opens and closes it
    token = settings.admin_token.get_secret_value()
    # The document is built here, before serving, and handed to schemathesis as a file: its loader gives a URL
    # only 10 s, which a busy CI machine once exceeded while the server built the document on first request.
    document = tmp_path / "openapi.json"
    document.write_text(json.dumps(app.openapi()), encoding="utf-8")
    with serve_in_thread(app, lifespan="on") as base_url:
        assert httpx.get(f"{base_url}/healthz", timeout=30).status_code == 200
        assert httpx.get(f"{base_url}/openapi.json", timeout=60).json() == json.loads(document.read_text())
        command = [
            sys.executable, "-m", "schemathesis.cli", "run", str(document), "--url", base_url,
            "--request-timeout", "60",
            "--checks", CHECKS, "--max-examples", str(EXAMPLES), "--seed", "20261202",
            "--header", f"Authorization: Bearer {token}", "--no-color",
            "--report", "junit", "--report-dir", str(tmp_path),
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=900,
                                env={**os.environ, "SCHEMATHESIS_HOOKS": ""}, cwd=tmp_path, check=False)
    summary = result.stdout[-6000:]
    assert result.returncode == 0, f"schemathesis found problems:\n{summary}\n{result.stderr[-2000:]}"
    operations = sum(len(item) for item in json.loads(document.read_text())["paths"].values())
    # Searched in the whole output: the warnings after it grow with the API and would push it out of `summary`.
    selected = re.search(r"Operations:\s+(\d+) selected / (\d+) total", result.stdout)
    assert selected and selected.groups() == (str(operations), str(operations)), summary  # every operation ran
    assert "passed" in summary
