"""Reading card-key import files (卡密导入): one code per line, or card number + password, optional expiry.

Accepted line shapes (one file may mix them):
    CODE
    CODE,2027-06-30                   code and expiry date
    CARDNO,PASSWORD[,2027-06-30]      comma (CSV, quotes allowed), tab, "----" or spaces between fields
A header line (e.g. ``card_no,password,expires`` or ``卡号,密码,有效期``), blank lines and lines starting
with ``#`` are skipped. Text is NFKC-normalized (full-width characters pasted from Chinese documents become
ASCII), cleared of invisible format characters (Unicode category Cf: zero-width space / joiner / non-joiner,
soft hyphen, word joiner, BOM, direction marks; copy-paste debris that would make `AB\u200bC` a second key
next to `ABC`) and trimmed. Fields that still hold an invisible or unassigned character (Hangul fillers,
variation selectors, private-use or unassigned code points, line separators) are refused, and so are codes
shorter than MIN_CODE_LENGTH characters (card number + password: together). An expiry date means "valid
through the end of that day" in the shop's time zone (QUANYI_SHOP_TIMEZONE).
"""

from __future__ import annotations

import csv
import datetime as dt
import re
import unicodedata
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from quanyi.shoptime import shop_midnight

__all__ = ["ParsedKey", "ParsedFile", "LineParser", "parse_card_keys", "decode_upload", "split_secret", "SEPARATOR",
           "normalize_code_text", "MIN_CODE_LENGTH"]

# Joins card number and password inside the encrypted secret; control characters never occur in fields.
SEPARATOR = "\x1f"
MAX_FIELD_LENGTH = 256
MIN_CODE_LENGTH = 6  # shorter "codes" are typing slips or fragments, and trivially guessable

_HEADER_WORDS = {
    "code", "card", "card_no", "cardno", "card_number", "number", "password", "pass", "pwd", "secret",
    "pin", "expires", "expiry", "expires_at", "expire", "expiry_date", "valid_until",
    "卡号", "密码", "卡密", "有效期", "过期时间", "到期时间", "兑换码",
}
_DATE = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$")
_BAD_CHARS = re.compile(r"[\x00-\x1f\x7f]")
# Invisible but not category Cf (those are removed): Hangul fillers, combining grapheme joiner, variation selectors.
_INVISIBLE = frozenset("\u115f\u1160\u3164\uffa0\u034f") | frozenset(map(chr, range(0xFE00, 0xFE10))) \
    | frozenset(map(chr, range(0xE0100, 0xE01F0)))
_REFUSED_CATEGORIES = frozenset({"Cs", "Co", "Cn", "Zl", "Zp"})


def normalize_code_text(raw: str) -> str:
    """NFKC, without invisible format characters (category Cf), trimmed: how every code is compared."""
    text = unicodedata.normalize("NFKC", raw)
    if any(unicodedata.category(ch) == "Cf" for ch in text):
        text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    return text.strip()


@dataclass(frozen=True, slots=True)
class ParsedKey:
    line_no: int
    secret: str  # "CODE" or "CARDNO\x1fPASSWORD", normalized; this is what gets encrypted
    expires_at: dt.datetime | None


@dataclass(slots=True)
class ParsedFile:
    keys: list[ParsedKey] = field(default_factory=list)
    invalid: list[tuple[int, str]] = field(default_factory=list)
    lines_read: int = 0


def decode_upload(data: bytes) -> str:
    """Bytes of an uploaded file -> text. UTF-8 (with or without BOM), else GB18030 (Excel on Chinese Windows)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError:
        raise ValueError("file is neither UTF-8 nor GB18030 text") from None


def split_secret(secret: str) -> tuple[str | None, str]:
    """Stored secret -> (card number or None, code/password)."""
    card_no, sep, password = secret.partition(SEPARATOR)
    return (card_no, password) if sep else (None, secret)


def _fields(line: str) -> list[str]:
    if "----" in line:
        parts = line.split("----")
    elif "\t" in line:
        parts = line.split("\t")
    elif "," in line:
        parts = next(csv.reader([line], skipinitialspace=True))
    else:
        parts = line.split()
    return [p.strip() for p in parts]


def _parse_date(text: str, now: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    match = _DATE.match(text)
    if not match:
        raise ValueError(f"expiry {text!r} is not a date like 2027-06-30")
    try:
        day = dt.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        raise ValueError(f"expiry {text!r} is not a real date") from None
    end_of_day = shop_midnight(day + dt.timedelta(days=1), zone)
    if end_of_day <= now:
        raise ValueError(f"already expired on {day.isoformat()}")
    return end_of_day


def _check_field(value: str, what: str) -> str:
    if not value:
        raise ValueError(f"{what} is empty")
    if len(value) > MAX_FIELD_LENGTH:
        raise ValueError(f"{what} is longer than {MAX_FIELD_LENGTH} characters")
    if _BAD_CHARS.search(value):
        raise ValueError(f"{what} contains control characters")
    if any(ch in _INVISIBLE or unicodedata.category(ch) in _REFUSED_CATEGORIES for ch in value):
        raise ValueError(f"{what} contains an invisible or unassigned character")
    return value


def _check_length(secret: str) -> str:
    if len(secret.replace(SEPARATOR, "")) < MIN_CODE_LENGTH:
        raise ValueError(f"shorter than {MIN_CODE_LENGTH} characters")
    return secret


def _parse_line(line: str, now: dt.datetime, zone: ZoneInfo) -> tuple[str, dt.datetime | None]:
    parts = _fields(line)
    if len(parts) == 1:
        return _check_length(_check_field(parts[0], "code")), None
    if len(parts) == 2:
        if _DATE.match(parts[1]):
            return _check_length(_check_field(parts[0], "code")), _parse_date(parts[1], now, zone)
        secret = _check_field(parts[0], "card number") + SEPARATOR + _check_field(parts[1], "password")
        return _check_length(secret), None
    if len(parts) == 3:
        secret = _check_field(parts[0], "card number") + SEPARATOR + _check_field(parts[1], "password")
        return _check_length(secret), _parse_date(parts[2], now, zone)
    raise ValueError(f"{len(parts)} fields; expected code, or card number and password, and an optional expiry")


def _is_header(line: str) -> bool:
    words = [w.lower() for w in _fields(line)]
    return bool(words) and all(w in _HEADER_WORDS for w in words)


class LineParser:
    """The import rules for one line at a time, for files read as a stream (import jobs); `parse_card_keys`
    is this over a whole text. `content_seen` is the only state: the first line with content may be a header."""

    __slots__ = ("zone", "now", "content_seen")

    def __init__(self, *, zone: ZoneInfo, now: dt.datetime, content_seen: bool = False) -> None:
        self.zone = zone
        self.now = now
        self.content_seen = content_seen

    def parse(self, line_no: int, raw: str) -> ParsedKey | tuple[int, str] | None:
        """A key, a problem (line number, reason), or None for a line without a code (blank, comment, header)."""
        line = normalize_code_text(raw)
        if not line or line.startswith("#"):
            return None
        if not self.content_seen:
            self.content_seen = True
            if _is_header(line):
                return None
        try:
            secret, expires_at = _parse_line(line, self.now, self.zone)
        except (ValueError, csv.Error) as exc:
            return line_no, str(exc)
        return ParsedKey(line_no=line_no, secret=secret, expires_at=expires_at)


def parse_card_keys(text: str, *, zone: ZoneInfo, now: dt.datetime | None = None) -> ParsedFile:
    """Parse an import file (expiry dates are days in `zone`, the shop's). Never raises on bad lines: they
    are reported with their line numbers."""
    parser = LineParser(zone=zone, now=now or dt.datetime.now(dt.UTC))
    result = ParsedFile()
    for line_no, raw in enumerate(text.splitlines(), start=1):
        result.lines_read = line_no
        parsed = parser.parse(line_no, raw)
        if isinstance(parsed, ParsedKey):
            result.keys.append(parsed)
        elif parsed is not None:
            result.invalid.append(parsed)
    return result
