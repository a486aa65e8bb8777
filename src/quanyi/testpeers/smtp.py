"""TEST PEER — a real SMTP server (aiosmtpd) on a loopback port that keeps every message it accepts.

Knobs: `fail_next` answers DATA with 451 (try again later) that many times; `reject_next` with 550;
`hold_replies` keeps each message it receives but holds back the 250 reply while set (a slow mail server,
or one whose reply never reaches the sender: the sender cannot know the message arrived).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from typing import Any

from aiosmtpd.controller import Controller

from quanyi.testpeers.runner import free_port

__all__ = ["SmtpSink"]


@dataclass
class SmtpSink:
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    fail_next: int = 0
    reject_next: int = 0
    hold_replies: bool = False
    host: str = "127.0.0.1"
    port: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self._lock:
            self.messages.clear()
            self.envelopes.clear()
            self.fail_next = self.reject_next = 0
            self.hold_replies = False

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd hook
        with self._lock:
            if self.fail_next > 0:
                self.fail_next -= 1
                return "451 4.3.0 temporarily unavailable, try again later"
            if self.reject_next > 0:
                self.reject_next -= 1
                return "550 5.7.1 message refused"
            raw = envelope.original_content or envelope.content
            self.messages.append(message_from_bytes(raw, policy=default))  # type: ignore[arg-type]
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        # Polled: the test's thread flips it, and an asyncio.Event would belong to this server's own loop.
        while self.hold_replies:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        return "250 2.0.0 OK: queued"

    @contextmanager
    def running(self) -> Iterator[SmtpSink]:
        self.port = free_port()
        controller = Controller(self, hostname=self.host, port=self.port)
        controller.start()
        try:
            yield self
        finally:
            controller.stop()
