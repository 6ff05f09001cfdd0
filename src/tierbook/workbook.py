"""A workbook sheet read into typed columns by fastexcel, for ``ingest``.

fastexcel reads the cells with calamine (Rust), the library pandas' ``engine="calamine"`` uses too, but
straight into Arrow columns: pandas makes a Python object of every cell, then a Timestamp of every date
cell. The members workbook of the 1M-customer demo (1M rows, 10 columns) took 28 s there (py-spy,
2026-12-02); see ``read_sheet`` for the figure here.

The frame holds what pandas' ``read_excel(dtype=object)`` holds, as far as the contract's parsers
(``tierbook.contract``) can tell:

- text cells: Arrow strings, with pandas' default missing-value texts ("", "NA", "N/A", "NULL", "nan" ...)
  missing;
- number cells: Python ints where whole and floats otherwise (pandas' conversion), NaN when empty;
- date cells: datetime64[ns], NaT when empty;
- a column of empty cells: NaN.

``read_sheet`` returns None for a sheet it cannot give exactly so, and ``ingest`` reads that one with
pandas, which also names what is wrong with a sheet that cannot be read: a column mixing text and
numbers or dates, a time-of-day or true/false column, a header with an empty or repeated name or not
holding the mapped columns, empty columns left of the table, a date beyond the year 2262.
"""

from __future__ import annotations

import io
import logging
import posixpath
import re
import zipfile
import zlib
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas._libs.parsers import STR_NA_VALUES

# "Could not determine dtype for column 3, falling back to string" for a column of empty cells: a log line
# that would reach the data page's output, about a case handled here
logging.getLogger("fastexcel").setLevel(logging.ERROR)

_NA_TEXTS = pa.array(sorted(STR_NA_VALUES), type=pa.string())


_ROW_END = re.compile(rb"</(?:[\w.-]+:)?row>|<(?:[\w.-]+:)?row\b[^>]*/>")
_DIMENSION = re.compile(rb"<(?:[\w.-]+:)?dimension\b[^>]*/>")
_RELS = "{http://schemas.openxmlformats.org/package/2006/relationships}Relationship"
_REL_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"


def head_copy(path: Path, sheet: int | str, rows: int) -> bytes | None:
    """A copy of an .xlsx workbook, in memory, whose sheet ``sheet`` stops after its first ``rows`` rows:
    what the check before a run reads instead of the whole file (its first CHECK_ROWS rows). fastexcel
    (calamine) parses a whole sheet even for ``n_rows=10``: 4.9 s for the 1M-member workbook's 570 MB of
    sheet XML, of which this copy decompresses the first 0.2 MB (2026-12-03). The other parts (shared
    strings, styles that make a number a date) are copied as they are, so the rows read are typed as in
    the whole file. None when the file is no zip-based workbook, has no such sheet, or is not longer
    than ``rows``: then the file itself is read."""
    try:
        with zipfile.ZipFile(path) as book:
            target = _sheet_part(book, sheet)
            if target is None:
                return None
            head, ends, counted = bytearray(), 0, 0  # counted: where the row ends counted so far stop
            with book.open(target) as part:
                while ends < rows:
                    chunk = part.read(1 << 20)
                    if not chunk:
                        return None  # the sheet ends first: the whole file is as quick to read
                    head += chunk
                    for match in _ROW_END.finditer(head, counted):  # a row end cut by the chunk is found whole next time
                        ends, counted = ends + 1, match.end()
                        if ends == rows:
                            break
            text = bytes(head[:counted])
            data = re.search(rb"<([\w.-]+:)?sheetData\b", text)
            root = re.search(rb"<([\w.-]+:)?worksheet\b", text)
            if data is None or root is None or re.search(rb"</(?:[\w.-]+:)?sheetData>", text):
                return None
            text = _DIMENSION.sub(b"", text, count=1)  # the whole sheet's range: calamine would size its grid by it
            text += b"</%ssheetData></%sworksheet>" % (data.group(1) or b"", root.group(1) or b"")
            out = io.BytesIO()
            with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as copy:
                for info in book.infolist():  # each part with the file's own time: the same copy on every call
                    part_info = zipfile.ZipInfo(info.filename, date_time=info.date_time)
                    copy.writestr(part_info, text if info.filename == target else book.read(info.filename))
            return out.getvalue()
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error, ElementTree.ParseError, KeyError, ValueError, NotImplementedError,
            RuntimeError):  # damaged, cut off, encrypted, or compressed in a way zipfile cannot read
        return None  # the whole file's reader says what is wrong with it


def _sheet_part(book: zipfile.ZipFile, sheet: int | str) -> str | None:
    """The zip member holding the sheet (its 0-based position or its name), from the workbook's parts list."""
    names = set(book.namelist())
    if "xl/workbook.xml" not in names or "xl/_rels/workbook.xml.rels" not in names:
        return None
    sheets = [element for element in ElementTree.fromstring(book.read("xl/workbook.xml")).iter() if element.tag.endswith("}sheet")]
    chosen = (sheets[sheet] if isinstance(sheet, int) and 0 <= sheet < len(sheets)
              else next((element for element in sheets if element.get("name") == sheet), None))
    if chosen is None or chosen.get(_REL_ID) is None:
        return None
    targets = {rel.get("Id"): rel.get("Target") for rel in ElementTree.fromstring(book.read("xl/_rels/workbook.xml.rels")).iter(_RELS)}
    target = targets.get(chosen.get(_REL_ID))
    if not target:
        return None
    part = target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join("xl", target))
    return part if part in names else None


def read_sheet(path: Path | bytes, sheet: int | str, header_row: int, nrows: int | None, needed: list[str]) -> pd.DataFrame | None:
    """The sheet's rows below ``header_row`` as columns (module docstring), or None when pandas must read it.
    ``needed``: the column names params map; a header without them is pandas' to read and report. ``path``
    may be a workbook's bytes (``head_copy``)."""
    import fastexcel

    try:
        loaded = fastexcel.read_excel(path).load_sheet(sheet, header_row=header_row, n_rows=nrows, schema_sample_rows=None,
                                                       dtype_coercion="strict")
        infos = loaded.available_columns()
        table = pa.Table.from_batches([loaded.to_arrow()])
    except Exception:  # noqa: BLE001 - a damaged file, a missing sheet, mixed columns: pandas' reader says which
        return None
    names = table.column_names
    if not names or infos[0].absolute_index != 0 or len(set(names)) < len(names) or not set(needed) <= set(names):
        return None
    if any(info.column_name_from != "looked_up" or (info.name.rsplit("_", 1)[0] in names and info.name.rsplit("_", 1)[-1].isdigit())
           for info in infos):  # a header cell left empty, or fastexcel's "name_1" for a repeated one
        return None
    columns = {}
    for name, column in zip(names, table.columns):
        converted = _column(column)
        if converted is None:
            return None
        columns[name] = converted
    return pd.DataFrame(columns)


def _column(column: pa.ChunkedArray) -> pd.Series | np.ndarray | None:
    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        text = pc.if_else(pc.is_in(column, value_set=_NA_TEXTS), pa.scalar(None, kind), column)
        return pd.Series(pd.arrays.ArrowStringArray(text.cast(pa.string())))
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        try:
            return pd.Series(column.cast(pa.timestamp("ns")).to_numpy())  # safe cast: beyond 2262 raises
        except pa.ArrowInvalid:
            return None
    if pa.types.is_floating(kind) or pa.types.is_integer(kind):
        numbers = column.to_numpy().astype(float)
        values = numbers.astype(object)
        whole = np.isfinite(numbers) & (numbers == np.trunc(numbers))
        values[whole] = [int(v) for v in numbers[whole]]  # pandas: int(value) when it equals the value
        return values
    if pa.types.is_null(kind):
        return np.full(len(column), np.nan, dtype=object)
    return None  # booleans, durations: rare enough for pandas' reader
