"""Exports (导出) as CSV or XLSX, streamed: rows go out as they are read, so an export of any size holds only
one chunk in memory and the download starts at once. One module for every export of the shop (orders today;
statements, key batches and reports reuse it): give columns and an async iterator of row chunks.

CSV is UTF-8 with a byte-order mark (Excel on Chinese Windows reads it right) and text cells that a
spreadsheet would run as a formula (=, +, -, @ ...) are prefixed with an apostrophe: buyer-supplied text
must not become a formula on the operator's machine. XLSX is written by hand (a zip of a few XML parts)
through zipfile's streaming mode; numbers stay numbers, money has two decimals, times are real dates.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal
from urllib.parse import quote
from xml.sax.saxutils import escape

from starlette.responses import StreamingResponse

__all__ = ["Column", "Cell", "ExportFormat", "csv_chunks", "xlsx_chunks", "export_response", "MEDIA_TYPES"]

Cell = str | int | Decimal | dt.datetime | None
ExportFormat = Literal["csv", "xlsx"]
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8",
               "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_EXCEL_EPOCH = dt.datetime(1899, 12, 30)


@dataclass(frozen=True, slots=True)
class Column:
    title: str
    width: int = 16  # XLSX column width in characters


# ---------------------------------------------------------------- CSV

def _csv_text(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, str):
        return "'" + value if value.startswith(_FORMULA_START) else value
    return str(value)


async def csv_chunks(columns: Sequence[Column], rows: AsyncIterator[Sequence[Sequence[Cell]]]) -> AsyncIterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([_csv_text(c.title) for c in columns])
    yield ("\ufeff" + buffer.getvalue()).encode("utf-8")
    async for chunk in rows:
        buffer.seek(0)
        buffer.truncate()
        writer.writerows([[_csv_text(value) for value in row] for row in chunk])
        yield buffer.getvalue().encode("utf-8")


# ---------------------------------------------------------------- XLSX

class _Sink(io.RawIOBase):
    """A write-only, unseekable file: zipfile writes into it, the generator hands out what it got."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self._parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/styles.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/></Types>')
_ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
    'officeDocument" Target="xl/workbook.xml"/></Relationships>')
_WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" '
    'Target="worksheets/sheet1.xml"/>'
    '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" '
    'Target="styles.xml"/></Relationships>')
# Cell styles: 0 plain, 1 bold header, 2 money (0.00), 3 date-time.
_STYLES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    '<numFmts count="2"><numFmt numFmtId="164" formatCode="0.00"/>'
    '<numFmt numFmtId="165" formatCode="yyyy-mm-dd hh:mm:ss"/></numFmts>'
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font><font><b/><sz val="11"/><name val="Calibri"/>'
    '</font></fonts><fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill '
    'patternType="gray125"/></fill></fills><borders count="1"><border><left/><right/><top/><bottom/><diagonal/>'
    '</border></borders><cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="4"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles></styleSheet>')


def _workbook(sheet_name: str) -> str:
    name = escape(_XML_ILLEGAL.sub("", sheet_name)[:31] or "Sheet1", {'"': "&quot;"})
    return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
            'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
            f'<sheets><sheet name="{name}" sheetId="1" r:id="rId1"/></sheets></workbook>')


def _xlsx_cell(value: Cell, *, header: bool = False) -> str:
    if value is None:
        return "<c/>"
    if isinstance(value, bool):
        value = "yes" if value else "no"
    if isinstance(value, int):
        return f"<c><v>{value}</v></c>"
    if isinstance(value, Decimal):
        return f'<c s="2"><v>{value}</v></c>'
    if isinstance(value, dt.datetime):
        naive = value.replace(tzinfo=None)
        serial = (naive - _EXCEL_EPOCH) / dt.timedelta(days=1)
        return f'<c s="3"><v>{serial:.8f}</v></c>'
    text = escape(_XML_ILLEGAL.sub("", str(value)))
    style = ' s="1"' if header else ""
    return f'<c t="inlineStr"{style}><is><t xml:space="preserve">{text}</t></is></c>'


def _xlsx_rows(rows: Sequence[Sequence[Cell]]) -> str:
    return "".join("<row>" + "".join(_xlsx_cell(v) for v in row) + "</row>" for row in rows)


async def xlsx_chunks(columns: Sequence[Column], rows: AsyncIterator[Sequence[Sequence[Cell]]], *,
                      sheet_name: str = "Sheet1") -> AsyncIterator[bytes]:
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, body in (("[Content_Types].xml", _CONTENT_TYPES), ("_rels/.rels", _ROOT_RELS),
                           ("xl/workbook.xml", _workbook(sheet_name)), ("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS),
                           ("xl/styles.xml", _STYLES)):
            archive.writestr(name, body)
        yield sink.take()
        with archive.open("xl/worksheets/sheet1.xml", "w") as sheet:
            widths = "".join(f'<col min="{i}" max="{i}" width="{c.width}" customWidth="1"/>'
                             for i, c in enumerate(columns, start=1))
            sheet.write(('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                         '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                         '<sheetViews><sheetView workbookViewId="0"><pane ySplit="1" topLeftCell="A2" state="frozen"/>'
                         f'</sheetView></sheetViews><cols>{widths}</cols><sheetData><row>'
                         + "".join(_xlsx_cell(c.title, header=True) for c in columns) + "</row>").encode())
            async for chunk in rows:
                sheet.write(_xlsx_rows(chunk).encode())
                yield sink.take()
            sheet.write(b"</sheetData></worksheet>")
    yield sink.take()


def export_response(fmt: ExportFormat, *, filename: str, columns: Sequence[Column],
                    rows: AsyncIterator[Sequence[Sequence[Cell]]], sheet_name: str = "Sheet1") -> StreamingResponse:
    """The download: `filename` without extension (UTF-8 names allowed), streamed as it is written."""
    body = csv_chunks(columns, rows) if fmt == "csv" else xlsx_chunks(columns, rows, sheet_name=sheet_name)
    full = f"{filename}.{fmt}"
    ascii_name = full.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    disposition = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(full)}"
    return StreamingResponse(body, media_type=MEDIA_TYPES[fmt],
                             headers={"Content-Disposition": disposition, "Cache-Control": "no-store",
                                      "X-Content-Type-Options": "nosniff"})
