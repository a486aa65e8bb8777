"""Card keys shown to staff are masked (打码); plaintext card keys never reach a log.

`mask_code` is the one way a code is displayed in CLI listings, admin API answers and logs.

Log redaction: every code this process handles in plaintext (imported, revealed, traced) is remembered as
a keyed hash (never as plaintext) in a bounded set. A log record factory, installed once per process,
formats each record's message (and traceback) and replaces any word whose hash is in that set with its
masked form. It runs before any handler, so no handler, formatter or log file ever sees the code.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["mask_code", "mask_contact", "remember_codes", "redact", "install_log_redaction", "RedactCardKeys"]

_MAX_REMEMBERED = 200_000
# A process-local key: the remembered hashes are useless outside this process.
_KEY = secrets.token_bytes(32)
_KEYED = hashlib.blake2b(key=_KEY, digest_size=16)  # copied for each word (_digest), never updated itself
_remembered: OrderedDict[bytes, None] = OrderedDict()
_lock = threading.Lock()
# Candidate words: runs between whitespace, quotes, brackets and field separators; then their "----" parts.
_WORD = re.compile(r"[^\s'\"()\[\]{}<>,;=|\x1f]{3,}")
_INNER = re.compile(r"(-{4}|[.:]+$)")
_PARTS = re.compile(r"[\x1f,\t ]|-{4}")  # card number / password separators in a stored code
_installed = False


def mask_code(code: str | None) -> str:
    """First 2 and last 2 characters visible, the rest starred; short codes are starred entirely."""
    if not code:
        return ""
    if len(code) <= 6:
        return "*" * len(code)
    return code[:2] + "*" * min(len(code) - 4, 12) + code[-2:]


def mask_contact(contact: str | None) -> str:
    """A buyer contact for display without `--show-contact`: a***@example.com, 138****5678."""
    if not contact:
        return ""
    local, at, domain = contact.partition("@")
    if at:
        return (local[:1] + "***@" + domain) if local else "***@" + domain
    if len(contact) >= 7:
        return contact[:3] + "****" + contact[-4:]
    return "*" * len(contact)


def _digest(word: str) -> bytes:
    # Keyed BLAKE2b, a MAC by design (as HMAC-SHA256 is), under the process's 256-bit key: a remembered hash
    # tells nothing about its code without the key. Copying the keyed state skips hashing the key block again:
    # a tenth of the CPU of HMAC-SHA256 through Python's hmac, which the registry used before.
    digest = _KEYED.copy()
    digest.update(word.encode("utf-8"))
    return digest.digest()


def _split(code: str) -> list[str]:
    """_PARTS.split(code), without the regular expression for the usual card\x1fpassword or single code."""
    if "," in code or "\t" in code or " " in code or "----" in code:
        return _PARTS.split(code)
    return code.split("\x1f")


def _words_of(code: str) -> list[str]:
    """What to remember of a code: the code and its card number / password parts, those that can be a word of
    a log line (redact() never looks up anything else: a card\x1fpassword pair, say, is found by its parts)."""
    parts = _split(code)
    if len(parts) > 1 and "\x1f" not in code and _WORD.fullmatch(code):  # CARD----PASS is a word itself
        parts.append(code)
    return [part for part in parts
            if len(part) >= 3 and (part.isalnum() or _WORD.fullmatch(part))]  # isalnum: the usual case, fast


def remember_codes(codes: Iterable[str | None]) -> None:
    """Mark plaintext codes (and card number / password parts) this process handled, for redaction."""
    # Hashed before taking the lock: other threads' log lines do not wait for it.
    digests = [_digest(word) for code in codes if code for word in _words_of(code)]
    with _lock:
        for digest in digests:
            _remembered[digest] = None
            _remembered.move_to_end(digest)
        while len(_remembered) > _MAX_REMEMBERED:
            _remembered.popitem(last=False)


def redact(text: str) -> str:
    """`text` with every remembered code masked."""
    if not _remembered or not text:
        return text

    def replace(match: re.Match[str]) -> str:
        word = match.group(0)
        if _digest(word) in _remembered:
            return mask_code(word)
        # A code inside a longer word, e.g. "CARD----PASS" or "code=ABC-123.": check the pieces.
        pieces = _INNER.split(word)
        if len(pieces) > 1:
            return "".join(mask_code(p) if p and _digest(p) in _remembered else p for p in pieces)
        return word

    return _WORD.sub(replace, text)


class RedactCardKeys(logging.Filter):
    """Handler/logger filter form of the redaction, for handlers set up outside this process's factory."""

    def filter(self, record: logging.LogRecord) -> bool:
        _redact_record(record)
        return True


def _redact_record(record: logging.LogRecord) -> None:
    if not _remembered:
        return
    # Redact the parts in place first, keeping the record's shape: some formatters (uvicorn's access log)
    # unpack record.args themselves.
    if isinstance(record.msg, str):
        record.msg = redact(record.msg)
    if isinstance(record.args, tuple):
        record.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in record.args)
    elif isinstance(record.args, Mapping):
        record.args = {key: redact(arg) if isinstance(arg, str) else arg for key, arg in record.args.items()}
    try:
        message = record.getMessage()
    except Exception:  # a broken format string: leave it to the logging module to report
        return
    redacted = redact(message)
    if redacted != message:  # a code inside a non-string argument: freeze the redacted message
        record.msg, record.args = redacted, ()
    if record.exc_info and not record.exc_text:
        record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


def install_log_redaction() -> None:
    """Wrap the process's log record factory so every record is redacted when it is created."""
    global _installed
    with _lock:
        if _installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            _redact_record(record)
            return record

        logging.setLogRecordFactory(factory)
        _installed = True
