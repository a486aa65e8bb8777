"""The spool of a streamed import (导入暂存): an uploaded file written to disk as it arrives, encrypted, and read
back line by line by the import job, from any offset (a resumed job starts after its last committed chunk).

File format: the plaintext cut into frames of FRAME_BYTES, each sealed with AES-256-GCM under a random key of
this spool alone (the job row keeps it, sealed by the card-key cipher), the frame's index as nonce: frames
cannot be reordered, altered or swapped between spools, and a truncated file is noticed (the job knows the
plaintext length). The file is 0600 and deleted when the job ends. Nothing is held whole in memory: the
writer keeps at most one frame, the reader one frame and one line.

The encoding is decided while the upload streams in, like `parsing.decode_upload`: UTF-8 (BOM or not), else
GB18030; anything else is refused before a job exists.
"""

from __future__ import annotations

import codecs
import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["FRAME_BYTES", "MAX_LINE_BYTES", "SpoolWriter", "SpooledFile", "SpoolDamaged", "SpoolTooLarge",
           "NotText", "read_lines", "spool_path"]

FRAME_BYTES = 64 * 1024
_TAG_BYTES = 16
# A line longer than this is reported invalid without being held (three fields of 256 four-byte characters fit).
MAX_LINE_BYTES = 4096
_LINE_END = re.compile(rb"\r\n|\r|\n")
_SUFFIX = ".spool"
_NAME = re.compile(r"[0-9a-f]{32}")


class SpoolDamaged(Exception):
    """The spool file is missing, shorter than recorded, or fails authentication."""


class SpoolTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"file is larger than {limit} bytes")
        self.limit = limit


class NotText(ValueError):
    """Neither UTF-8 nor GB18030."""


@dataclass(frozen=True, slots=True)
class SpooledFile:
    name: str
    key: bytes
    bytes_total: int
    encoding: str


def _nonce(index: int) -> bytes:
    return index.to_bytes(12, "big")


def spool_path(directory: Path, name: str) -> Path:
    if not _NAME.fullmatch(name):  # the name comes from our own row, but a path is built from it
        raise SpoolDamaged(f"bad spool name {name!r}")
    return directory / (name + _SUFFIX)


class SpoolWriter:
    """Write an upload into an encrypted spool as it arrives. Use as a context manager: the file is removed
    unless `finish` succeeded (an aborted or refused upload leaves nothing behind)."""

    def __init__(self, directory: Path, *, max_bytes: int) -> None:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.name = secrets.token_hex(16)
        self.path = spool_path(directory, self.name)
        self._key = AESGCM.generate_key(bit_length=256)
        self._aead = AESGCM(self._key)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self._pending = bytearray()
        self._frames = 0
        self._total = 0
        self._max = max_bytes
        self._utf8: codecs.IncrementalDecoder | None = codecs.getincrementaldecoder("utf-8")()
        self._gb: codecs.IncrementalDecoder | None = codecs.getincrementaldecoder("gb18030")()
        self._finished = False

    def __enter__(self) -> SpoolWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._finished:
            self.discard()

    @property
    def bytes_written(self) -> int:
        return self._total

    def write(self, data: bytes) -> None:
        if not data:
            return
        self._total += len(data)
        if self._total > self._max:
            raise SpoolTooLarge(self._max)
        self._check_text(data, final=False)
        self._pending += data
        while len(self._pending) >= FRAME_BYTES:
            self._seal(bytes(self._pending[:FRAME_BYTES]))
            del self._pending[:FRAME_BYTES]

    def _check_text(self, data: bytes, *, final: bool) -> None:
        for attr in ("_utf8", "_gb"):
            decoder = getattr(self, attr)
            if decoder is None:
                continue
            try:
                decoder.decode(data, final)
            except UnicodeDecodeError:
                setattr(self, attr, None)

    def _seal(self, plain: bytes) -> None:
        sealed = self._aead.encrypt(_nonce(self._frames), plain, None)
        view = memoryview(sealed)
        while view:
            view = view[os.write(self._fd, view):]
        self._frames += 1

    def finish(self) -> SpooledFile:
        """Seal the last frame and close; raises NotText for a file that is neither UTF-8 nor GB18030."""
        self._check_text(b"", final=True)
        encoding = "utf-8" if self._utf8 is not None else "gb18030" if self._gb is not None else None
        if encoding is None:
            raise NotText("file is neither UTF-8 nor GB18030 text")
        if self._pending:
            self._seal(bytes(self._pending))
            self._pending.clear()
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = -1
        self._finished = True
        return SpooledFile(name=self.name, key=self._key, bytes_total=self._total, encoding=encoding)

    def discard(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self.path.unlink(missing_ok=True)
        self._finished = True


def _frames(path: Path, key: bytes, start_frame: int, bytes_total: int) -> Iterator[bytes]:
    aead = AESGCM(key)
    frames = (bytes_total + FRAME_BYTES - 1) // FRAME_BYTES
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise SpoolDamaged("the uploaded file is gone from the spool directory") from None
    with handle:
        handle.seek(start_frame * (FRAME_BYTES + _TAG_BYTES))
        for index in range(start_frame, frames):
            expected = min(FRAME_BYTES, bytes_total - index * FRAME_BYTES) + _TAG_BYTES
            sealed = handle.read(expected)
            if len(sealed) != expected:
                raise SpoolDamaged("the spool file is shorter than the upload was")
            try:
                yield aead.decrypt(_nonce(index), sealed, None)
            except InvalidTag:
                raise SpoolDamaged("the spool file failed authentication") from None


def read_lines(path: Path, key: bytes, *, start: int, bytes_total: int) -> Iterator[tuple[bytes | None, int]]:
    """The spool's lines from plaintext offset `start` (a line start): (line without its end, offset after it).
    Lines end at \\n, \\r\\n or \\r (ASCII bytes that are never part of a UTF-8 or GB18030 character); a line
    longer than MAX_LINE_BYTES comes as None, without being held."""
    frame = start // FRAME_BYTES
    buffer = bytearray()
    buffer_at = frame * FRAME_BYTES  # plaintext offset of buffer[0]
    skip = start - buffer_at
    too_long = False
    for plain in _frames(path, key, frame, bytes_total):
        if skip:
            plain, skip, buffer_at = plain[skip:], 0, buffer_at + skip
        buffer += plain
        eof = buffer_at + len(buffer) >= bytes_total
        pos = 0
        while True:
            match = _LINE_END.search(buffer, pos)
            if match is None or (match.group() == b"\r" and match.end() == len(buffer) and not eof):
                break  # no end yet, or a \r that may be the first half of \r\n: wait for the next frame
            too_long = too_long or match.start() - pos > MAX_LINE_BYTES
            yield (None if too_long else bytes(buffer[pos:match.start()])), buffer_at + match.end()
            too_long = False
            pos = match.end()
        del buffer[:pos]
        buffer_at += pos
        if len(buffer) > MAX_LINE_BYTES:
            too_long = True  # its end is still to come; drop what we have of it (but a \r that may end it)
            drop = len(buffer) - (1 if buffer.endswith(b"\r") else 0)
            buffer_at += drop
            del buffer[:drop]
    if buffer or too_long:
        too_long = too_long or len(buffer) > MAX_LINE_BYTES
        yield (None if too_long else bytes(buffer)), buffer_at + len(buffer)
