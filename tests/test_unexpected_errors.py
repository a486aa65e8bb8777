"""An unexpected error in a request: one problem+json 500 for the client and exactly one ERROR log record,
with the traceback, the method, the path and the request id, card keys masked in it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from helpers import random_code
from quanyi.inventory.masking import mask_code, remember_codes
from quanyi.testpeers.runner import serve_in_thread

LEAKED = random_code()


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def errors(self) -> list[logging.LogRecord]:
        return [r for r in self.records if r.levelno >= logging.ERROR]


@contextmanager
def _listening(handler: logging.Handler, *names: str) -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in names]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


@pytest.fixture
def records() -> Iterator[_Records]:
    handler = _Records()
    with _listening(handler, ""):
        yield handler


@pytest.fixture
def failing_app(app):
    remember_codes([LEAKED])

    @app.get("/api/_test/boom")
    async def boom() -> None:
        raise RuntimeError(f"the supplier answered with {LEAKED}")

    return app


def _assert_one_error_record(records: _Records) -> None:
    errors = list({id(r): r for r in records.errors()}.values())
    assert len(errors) == 1, [(r.name, r.getMessage()) for r in errors]
    record = errors[0]
    text = logging.Formatter().format(record)
    assert "GET /api/_test/boom" in text and "req-7f3a" in text and record.request_id == "req-7f3a"
    assert "Traceback" in text and "RuntimeError: the supplier answered with" in text
    assert LEAKED not in text and mask_code(LEAKED) in text


def _assert_problem(response: httpx.Response) -> None:
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "internal_error"
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_a_failing_request_is_logged_once_through_a_real_server(failing_app, records):
    # uvicorn configures (and so empties) its own loggers when it starts; they do not propagate to the root.
    with serve_in_thread(failing_app, timeout=60) as url, _listening(records, "uvicorn", "uvicorn.error"):
        response = httpx.get(url + "/api/_test/boom", headers={"X-Request-ID": "req-7f3a"}, timeout=60)
    _assert_one_error_record(records)
    _assert_problem(response)


async def test_a_failing_request_answers_500_in_process(failing_app, client, records):
    response = await client.get("/api/_test/boom", headers={"X-Request-ID": "req-7f3a"})
    _assert_one_error_record(records)
    _assert_problem(response)
