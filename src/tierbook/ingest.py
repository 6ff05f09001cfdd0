"""Ingestion: read each declared source (CSV / Excel / Parquet, any encoding) and map it onto the
data contract (``tierbook.contract``).

Reading never modifies or copies an input file. Every value is read as text first and parsed by
its column's kind (the parsers are in ``tierbook.contract``), so zero-padded ids survive and a bad
value becomes a missing value that the cleaning stage rejects with a reason and the text, instead
of a crash. A file or column that is wrong as a whole stops the run with one line naming the
file, the line or column, the problem and the fix: not the format its name or params say (a CSV
named .xlsx, an HTML page named .xls, a workbook named .csv, binary bytes), not the encoding
params declare or mixing two, empty, a header without rows, cut off (the last row, a quoted
value or a character unfinished), a row with more fields than the header, mapped columns not in
the header (with the closest name, and the row holding them below title rows), a date or amount
column mostly unparseable or mixing day-first and month-first dates. ``check_sources`` runs the
same reading and mapping on the first rows of every file before a run folder is made.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import gzip
import hashlib
import io
import itertools
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import privacy, workbook
from .contract import (  # noqa: F401 - the parsers are used here and imported from here (onboard, tests)
    TABLES,
    DateOrderConflict,
    parse_datetimes,
    parse_ids,
    parse_numbers,
    parse_text,
)
from .errors import TierbookError
from .memory import give_back_memory
from .params import Params, Source, TransactionSource
from .pipeline import INPUTS_FILE, inputs_read  # noqa: F401 - the data section's record of the files it read, imported from here

SAMPLE_BYTES = 2_000_000
# `make check` and the check before a run read this much of each CSV (and CHECK_ROWS rows of a
# workbook or Parquet file) and map it like the data stage does: a wrong column, encoding, format
# or date order stops before any run folder exists, in about 50 ms a file.
CHECK_BYTES = 200_000
CHECK_ROWS = 1_000
# GB2312 and GBK are subsets of GB18030: decoding with the superset never loses a character.
CHINESE_CODECS = {"gb2312": "gb18030", "gbk": "gb18030", "hz": "gb18030", "gb18030": "gb18030"}
KOREAN_CODECS = {"cp949", "euckr", "johab", "iso2022kr"}
# Single-byte Latin codecs charset_normalizer ranks alike on a short sample (it took "cliént" for
# cp1250, where à reads as ŕ): Windows-1252, the Western European one, is what such exports are.
LATIN_CODECS = {"cp1250", "cp1252", "cp1257", "cp775", "cp850", "cp852", "cp437", "cp858", "maclatin2", "macroman", "maciceland",
                "hproman8", "latin1", "iso88591", "iso88592", "iso88593", "iso88594", "iso88599", "iso885910", "iso885913",
                "iso885914", "iso885915", "iso885916"}
# UTF-32 first: its little-endian BOM starts with UTF-16's. Excel's "Unicode Text" export is UTF-16 with a BOM.
BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
# A column must parse for at least this share of its non-empty values, else it is the wrong
# column or the wrong format and the run stops (single bad values are rejected row by row).
MIN_PARSE_SHARE = 0.5
# read_all and the data stage read this many sources at a time (threads; see Reading)
READ_THREADS = 2
DELIMITERS = ",;\t|"
ZIP_MAGIC, OLE2_MAGIC, PARQUET_MAGIC = b"PK\x03\x04", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", b"PAR1"
# Errors pandas and the codecs raise on a file that is not what params say; each becomes one line.
READ_ERRORS = (ValueError, OSError, EOFError, zlib.error, UnicodeError, LookupError, csv.Error, pd.errors.ParserError)


@dataclass
class RawTable:
    """A source as read: every column as text (object dtype), plus where it came from.

    ``top_rows`` gives the first rows of the file as text cells (title rows included), for the
    hint of a missing column ("the mapped columns are in row 3: set `header_row: 2`")."""

    source: str
    path: Path
    frame: pd.DataFrame
    encoding: str | None
    sha256: str
    top_rows: Callable[[], list[list[str]]] | None = None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _format_of(path: Path, declared: str) -> str:
    if declared != "auto":
        return declared
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in (".gz", ".bz2", ".zip", ".xz"):
        suffixes = suffixes[:-1]
    ext = suffixes[-1] if suffixes else ""
    if ext in (".xlsx", ".xlsm", ".xls", ".ods"):
        return "excel"
    if ext in (".parquet", ".pq"):
        return "parquet"
    return "csv"


def _open_bytes(path: Path):
    return gzip.open(path, "rb") if path.suffix.lower() == ".gz" else open(path, "rb")


def _head_bytes(path: Path, n: int = SAMPLE_BYTES) -> bytes:
    with _open_bytes(path) as fh:
        return fh.read(n)


def _utf16_without_bom(sample: bytes) -> str | None:
    """UTF-16 without a BOM: mostly-ASCII text has a zero in every other byte."""
    n = min(len(sample), 4000) // 2 * 2
    if n < 4:
        return None
    even, odd = sample[0:n:2], sample[1:n:2]
    if odd.count(0) > 0.4 * len(odd) and even.count(0) < 0.05 * len(even):
        return "utf-16-le"
    if even.count(0) > 0.4 * len(even) and odd.count(0) < 0.05 * len(odd):
        return "utf-16-be"
    return None


def _reads_as_chinese(sample: bytes) -> bool:
    """GB18030 decodes the head, and its Chinese characters are the common ones (GB2312).

    charset_normalizer took a short GBK file (a Chinese header over a few rows) for cp1251 or
    big5hkscs. Latin-1 or cp1252 bytes also decode as GB18030, but into rare characters: an
    accented letter before an ASCII one ("é" + "n") makes a pair outside GB2312."""
    head = sample[:65_536]
    if b"\n" in head[:-1]:
        head = head[: head.rfind(b"\n") + 1]
    try:
        text = head.decode("gb18030")
    except UnicodeDecodeError:
        return False
    wide = {c for c in text if ord(c) >= 0x2E80}
    if not wide:
        return False
    common = 0
    for c in wide:
        try:
            c.encode("gb2312")
            common += 1
        except UnicodeEncodeError:
            pass
    return common >= 0.8 * len(wide)


def detect_encoding(sample: bytes) -> str:
    """A byte-order mark's codec (UTF-8, UTF-16, UTF-32), else UTF-8 when the bytes decode as
    UTF-8, else the detected codec. Chinese codecs are widened to GB18030 (a superset of GBK and GB2312).
    """
    for bom, name in BOMS:
        if sample.startswith(bom):
            return name
    utf16 = _utf16_without_bom(sample)
    if utf16:
        return utf16
    # the sample is the head of the file: cut at the last line end so that a multi-byte character
    # split by the cut does not make the right codec fail (a 20,000-customer GBK export was read as
    # ISO-8859-5 when the 2 MB cut fell inside a character)
    if b"\n" in sample[:-1]:
        sample = sample[: sample.rfind(b"\n") + 1]
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    if _reads_as_chinese(sample):
        return "gb18030"
    from charset_normalizer import from_bytes

    best = from_bytes(sample).best()
    if best is None:
        return "latin-1"
    name = best.encoding.lower().replace("_", "").replace("-", "")
    if name in LATIN_CODECS:
        try:
            sample.decode("cp1252")
            return "cp1252"
        except UnicodeDecodeError:
            pass
    if name in KOREAN_CODECS:
        # a GBK export whose only Chinese is a short header (ids, dates and numbers below it) is often
        # taken for Korean: every EUC-KR byte pair is a valid GBK pair, and Chinese is what these clients write
        try:
            sample.decode("gb18030")
            return "gb18030"
        except UnicodeDecodeError:
            pass
    return CHINESE_CODECS.get(name, best.encoding)


def _sniff_delimiter(text: str, header_row: int = 0) -> str:
    """The delimiter that splits the header into the most columns with every row agreeing.

    csv.Sniffer guessed from character frequencies and took ';' for the delimiter of a
    comma-separated file whose quoted values held semicolons; parsing each candidate with the csv
    module respects quotes. The last row read is left out of the vote (the sample may cut it)."""
    best, choice = None, ","
    for delimiter in DELIMITERS:
        try:
            rows = list(itertools.islice(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), header_row, header_row + 51))
        except csv.Error:
            continue
        if not rows:
            continue
        body = rows[1:-1] if len(rows) > 2 else rows[1:]
        agree = sum(len(r) == len(rows[0]) for r in body) / len(body) if body else 1.0
        score = (len(rows[0]) > 1, agree, len(rows[0]))
        if best is None or score > best:
            best, choice = score, delimiter
    return choice


# --------------------------------------------------------------------------- what is wrong with a file


def _check_encoding_name(source: Source) -> None:
    if source.encoding == "auto":
        return
    try:
        codecs.lookup(source.encoding)
    except LookupError:
        raise TierbookError(f"source {source.name!r}: `encoding: {source.encoding}` is not an encoding Python knows; "
                            f"use auto, utf-8, utf-8-sig, gb18030, utf-16 or latin-1") from None


def _utf8_until_a_bad_line(head: bytes) -> bool:
    """Whole lines of UTF-8 text with Chinese or accented letters before the first invalid byte:
    a UTF-8 file with a line pasted in from another encoding (a GBK file fails within its first
    characters, long before a whole line)."""
    try:
        head.decode("utf-8")
        return False
    except UnicodeDecodeError as exc:
        before = head[: exc.start].decode("utf-8")
    return "\n" in before and sum(ord(c) > 127 for c in before) >= 2


def _wrong_format(path: Path, fmt: str, head: bytes, encoding: str | None, source: Source) -> str | None:
    """One line when the file's first bytes say it is not the declared format, else None. For a
    CSV, NUL bytes are looked for only once ``encoding`` is known to decode it."""
    name = source.name
    if fmt == "excel":
        if head.startswith((ZIP_MAGIC, OLE2_MAGIC)):
            return None
        page = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
        if page.startswith((b"<html", b"<!doctype", b"<table", b"<?xml", b"<meta")):
            return (f"{path}: is an HTML or XML page with an Excel name, not a workbook (some systems export web tables so); "
                    f"open it in Excel and save it as .xlsx, then read it again")
        return (f"{path}: is not an Excel workbook (it has neither the .xlsx nor the .xls signature; it looks like text, e.g. "
                f"a CSV with an Excel name); set `format: csv` of source {name!r} or save it from Excel as .xlsx")
    if fmt == "parquet":
        if head.startswith(PARQUET_MAGIC):
            return None
        return f"{path}: is not a Parquet file (it does not start with PAR1); set `format:` of source {name!r} to csv or excel, or export it again"
    if head.startswith(ZIP_MAGIC):
        return f"{path}: is a zip archive or an .xlsx workbook, not CSV text; set `format: excel` of source {name!r} (or unzip it and point `path` at the CSV)"
    if head.startswith(OLE2_MAGIC):
        return f"{path}: is an Excel .xls workbook, not CSV text; set `format: excel` of source {name!r}"
    if head.startswith(PARQUET_MAGIC):
        return f"{path}: is a Parquet file, not CSV text; set `format: parquet` of source {name!r}"
    if encoding and b"\x00" in head[:100_000] and not encoding.lower().startswith(("utf-16", "utf-32", "utf_16", "utf_32")):
        return (f"{path}: contains NUL bytes, so it is not CSV text in {encoding} (a binary file, or UTF-16 without its mark?); "
                f"export it again as CSV, or set `encoding:` of source {name!r}")
    return None


@dataclass
class _DecodeProblem:
    offset: int  # byte offset of the first bad byte in the file
    line: int  # 1-based line of the file it is on
    bad: bytes
    at_end: bool  # the file ends inside a character: it was cut off


def _explicit_codec(encoding: str, first: bytes) -> tuple[str, int]:
    """The codec that decodes the file block by block (a BOM codec guesses the byte order again on
    every block), and the length of the BOM at the start of the file to skip."""
    name = codecs.lookup(encoding).name
    if name == "utf-8-sig":
        return "utf-8", 3 if first.startswith(codecs.BOM_UTF8) else 0
    if name in ("utf-16", "utf-32"):
        le, be = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) if name == "utf-16" else (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)
        if first.startswith(be):
            return f"{name}-be", len(be)
        return f"{name}-le", len(le) if first.startswith(le) else 0
    return name, 0


def _find_decode_problem(blocks, encoding: str, complete: bool = True) -> _DecodeProblem | None:
    """The first byte sequence that is not valid ``encoding`` in a stream of byte blocks.

    pandas reports a decoding error at a position inside its own buffer ("position 0"), which
    tells the consultant nothing; this names the byte and the line. ``complete``: the blocks are
    the whole file, so an unfinished character at the end means the file was cut off."""
    blocks = iter(blocks)
    block = next(blocks, b"")
    codec, skip = _explicit_codec(encoding, block)
    block, base, line, pending = block[skip:], skip, 1, b""
    while True:
        following = next(blocks, None)
        last = following is None
        data = pending + block
        try:
            text, pending = data.decode(codec), b""
        except UnicodeDecodeError as exc:
            unfinished = exc.end == len(data) and any(k in exc.reason for k in ("end of data", "incomplete", "truncated"))
            if unfinished and not (last and complete):
                text, pending = data[:exc.start].decode(codec), data[exc.start:]
            else:
                before = data[:exc.start].decode(codec, errors="replace")
                return _DecodeProblem(base + exc.start, line + before.count("\n"), data[exc.start:exc.end], unfinished)
        line += text.count("\n")
        base += len(data) - len(pending)
        if last:
            return None
        block = following


def _file_blocks(path: Path):
    with _open_bytes(path) as fh:
        yield from iter(lambda: fh.read(1 << 20), b"")


def _decode_error(path: Path, source: Source, encoding: str, problem: _DecodeProblem, head: bytes) -> TierbookError:
    if problem.at_end:
        return TierbookError(f"{path}: the file ends in the middle of a {encoding} character (line {problem.line}): it looks truncated "
                             f"(cut off while exporting or copying); export or copy it again")
    where = f"line {problem.line} (byte {problem.offset:,}: {problem.bad.hex(' ').upper()})"
    if source.encoding != "auto":
        guess = detect_encoding(head)
        if codecs.lookup(guess).name != codecs.lookup(encoding).name:
            return TierbookError(f"{path}: is not {encoding} as `encoding` of source {source.name!r} says: {where} is not valid {encoding}; "
                                 f"the file looks like {guess}: set `encoding: {guess}` (or auto)")
        return TierbookError(f"{path}: {where} is not valid {encoding}; set `encoding:` of source {source.name!r} to the file's encoding "
                             f"(e.g. gb18030 or utf-16)")
    return TierbookError(f"{path}: {where} is not valid {encoding}, the encoding of the lines before it; the file mixes encodings: "
                         f"set `encoding:` of source {source.name!r} to the right one or export it again as UTF-8")


# --------------------------------------------------------------------------- reading


def read_source(source: Source, path: Path, head_only: bool = False) -> RawTable:
    """Read one source file as text columns. Raises TierbookError naming the file and the fix.

    ``head_only``: only the first CHECK_BYTES of a CSV (CHECK_ROWS rows of a workbook or Parquet
    file), for the check before a run; the checksum is then left empty."""
    if not path.exists():
        raise TierbookError(f"source {source.name!r}: file {path} does not exist; put the export there or fix `path` in params")
    _check_encoding_name(source)
    fmt = _format_of(path, source.format)
    encoding, top_rows = None, None
    try:
        head = _head_bytes(path, SAMPLE_BYTES)
        if not head.strip():
            raise TierbookError(f"{path}: the file is empty; export it again or remove source {source.name!r}")
        if fmt == "csv":
            frame, encoding, top_rows = _read_csv(source, path, head, head_only)
        else:
            problem = _wrong_format(path, fmt, head, None, source)
            if problem:
                raise TierbookError(problem)
            if fmt == "excel":
                frame, top_rows = _read_excel(source, path, CHECK_ROWS if head_only else None)
            else:
                frame = _read_parquet(path, CHECK_ROWS if head_only else None)
    except TierbookError:
        raise
    except READ_ERRORS as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if isinstance(exc, EOFError | zlib.error | gzip.BadGzipFile):
            raise TierbookError(f"{path}: is a damaged or cut-off gzip file ({first}); copy or export it again") from None
        raise TierbookError(f"{path}: cannot be read as {fmt} ({first}); check `format`, `encoding` and `delimiter` of source {source.name!r}") from None
    frame.columns = [str(c).replace("\ufeff", "").strip() for c in frame.columns]
    if frame.empty and len(frame.columns):
        raise TierbookError(f"{path}: has a header but no data rows; export it again with its rows, or remove source {source.name!r} from params")
    return RawTable(source.name, path, frame.reset_index(drop=True), encoding, "" if head_only else file_sha256(path), top_rows)


def _read_csv(source: Source, path: Path, head: bytes, head_only: bool):
    encoding = detect_encoding(head) if source.encoding == "auto" else source.encoding
    if source.encoding == "auto" and encoding != "utf-8" and _utf8_until_a_bad_line(head):
        encoding = "utf-8"  # UTF-8 text with a line in another encoding: name that line rather than read it all wrong
    problem = _wrong_format(path, "csv", head, None, source)  # a workbook, a Parquet file: before decoding it
    if problem:
        raise TierbookError(problem)
    complete = len(head) < SAMPLE_BYTES
    sample = head if complete or not head_only else head[:CHECK_BYTES]
    found = _find_decode_problem([sample], encoding, complete=complete and sample is head)
    if found:
        raise _decode_error(path, source, encoding, found, head)
    problem = _wrong_format(path, "csv", head, encoding, source)  # NUL bytes in what decoded as text
    if problem:
        raise TierbookError(problem)
    text = _decode_head(sample, encoding)
    delimiter = _sniff_delimiter(text, source.header_row) if source.delimiter == "auto" else source.delimiter
    # Arrow strings: a 7.3M-line export held as Python str objects took over 6 GiB in the data stage (1M-customer demo,
    # 2026-12-02); Arrow keeps the bytes in one buffer per column and its string functions run in C++
    options = dict(sep=delimiter, dtype="string[pyarrow]", keep_default_na=False, na_values=[""], skiprows=source.header_row,
                   skipinitialspace=True)
    try:
        if head_only and not (complete and sample is head):
            frame = pd.read_csv(io.StringIO(text[: text.rfind("\n") + 1]), **options)
        else:
            frame = _read_csv_arrow(path, encoding, delimiter, source.header_row, text)
            if frame is None:
                frame = pd.read_csv(path, encoding=encoding, **options)
    except UnicodeDecodeError:
        found = _find_decode_problem(_file_blocks(path), encoding)
        raise (_decode_error(path, source, encoding, found, head) if found else
               TierbookError(f"{path}: is not valid {encoding}; set `encoding:` of source {source.name!r}")) from None
    except pd.errors.EmptyDataError:
        raise TierbookError(f"{path}: no header row found; check `header_row` of source {source.name!r}") from None
    except pd.errors.ParserError as exc:
        raise _parser_error(path, source, str(exc), delimiter, encoding) from None
    if not (head_only and not complete):
        _check_not_truncated(path, frame, encoding, delimiter)
    header = {str(c).replace("\ufeff", "").strip() for c in frame.columns}
    if not set(source.columns) <= header:
        _suggest_encoding(path, source, sample, encoding, delimiter)

    def top_rows() -> list[list[str]]:
        try:
            return [[c.strip() for c in row] for row in itertools.islice(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), 30)]
        except csv.Error:  # only a hint for an error message: none rather than a second error
            return []

    return frame, encoding, top_rows


def _read_csv_arrow(path: Path, encoding: str, delimiter: str, header_row: int, head_text: str) -> pd.DataFrame | None:
    """The whole CSV read by pyarrow's multi-threaded reader into Arrow string columns, as pandas'
    reader with the options of ``_read_csv`` reads it; None when the file needs pandas' reader
    (its header repeats or lacks a name, a row's fields differ from the header's, or any other
    problem pandas names better: the caller then reads it with pandas, which raises the one-line error).

    The 4.6M-line GBK POS export of the 1M-customer demo: 8 s here against 34 s for pandas' reader
    into Arrow strings (same strings, same missing values; 2026-12-02, bench/scale.py)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    if len(delimiter) != 1:  # a regular expression (`delimiter: "\\s+"`): pandas' reader only
        return None
    try:
        names = next(itertools.islice(csv.reader(io.StringIO(head_text, newline=""), delimiter=delimiter, skipinitialspace=True),
                                      header_row, header_row + 1))
    except (StopIteration, csv.Error):
        return None
    names = [n.replace("\ufeff", "") if i == 0 else n for i, n in enumerate(names)]
    if f'{delimiter} "' in head_text:  # a quoted value after a space: pandas' skipinitialspace unquotes it, Arrow would not
        return None
    if not names or any(not n.strip() for n in names) or len(set(names)) < len(names):
        return None
    codec = codecs.lookup(encoding).name
    # Arrow skips a UTF-8 BOM itself; a GB encoding's bytes are parsed as they are (GB_CODECS), others are transcoded
    as_bytes = codec in GB_CODECS and gb_safe_delimiter(delimiter)
    arrow_encoding = "utf8" if codec in ("utf-8", "utf-8-sig") or as_bytes else encoding
    kind = pa.binary() if as_bytes else pa.string()
    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(encoding=arrow_encoding, skip_rows=header_row + 1, column_names=[f"c{i}" for i in range(len(names))],
                                           block_size=1 << 24),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(column_types={f"c{i}": kind for i in range(len(names))}, null_values=[""],
                                                 strings_can_be_null=True, quoted_strings_can_be_null=True),
        )
        # a column at a time, each read column let go of once replaced: the 6.4M-line GBK POS export of 1.4M customers
        # peaked at 2.34 GiB when the read table was held until every column was decoded and trimmed (2026-12-04)
        arrays = table.columns
        del table
        for i, column in enumerate(arrays):
            arrays[i] = None
            if as_bytes:
                column = gb_decoded(column, codec)
            # pandas' skipinitialspace: spaces after a delimiter are not part of the value, and a value of spaces only is
            # missing; a column with no value starting with a space is kept as it is (no copy)
            if pc.any(pc.starts_with(column, " ")).as_py():
                trimmed = pc.utf8_ltrim(column, characters=" ")
                column = pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)
            arrays[i] = column
    except (pa.ArrowException, UnicodeError, OSError, ValueError):
        return None
    return pa.table(arrays, names=names).to_pandas(types_mapper={pa.string(): pd.StringDtype("pyarrow")}.get)


# The GB encodings of Chinese exports (codecs' names). Their bytes are parsed by Arrow's CSV reader as they are: a
# character's bytes after the first are 0x30-0x39 or 0x40-0xFE, never the quote (0x22), a line end or a delimiter below
# 0x30 or in 0x3A-0x3F (comma, tab, semicolon, colon, space; ``gb_safe_delimiter``), so the fields are those of the
# decoded text; each column is then decoded (``gb_decoded``). A file delimited by "|" (0x7C, the second byte of 亅) is
# transcoded. Arrow's transcoding runs Python's decoder over the whole file holding Python's lock: the 1M-customer demo's
# 374 MB POS export spent 4.5 s there and 1.1 s encoding UTF-8 again, beside the other export being read (2026-12-03).
GB_CODECS = ("gb2312", "gbk", "gb18030")


def gb_safe_delimiter(delimiter: str) -> bool:
    """Whether no byte after the first of a GB character can be ``delimiter`` (``GB_CODECS``)."""
    return len(delimiter) == 1 and (ord(delimiter) < 0x30 or 0x3A <= ord(delimiter) <= 0x3F)


def gb_decoded(column, codec: str):
    """A binary column of GB-encoded text as Arrow strings: a chunk whose bytes are all ASCII is already UTF-8 (ids, dates,
    amounts: cast as it is); any other is dictionary-encoded and only its distinct values decoded (stores, categories,
    statuses repeat a few values). Raises UnicodeDecodeError for bytes that are not ``codec``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    decoded: dict[bytes, str] = {}
    chunks = []
    for chunk in column.chunks:
        data = chunk.buffers()[2]
        if data is None or not len(data) or int(np.frombuffer(data, dtype=np.uint8).max()) < 0x80:
            chunks.append(chunk.cast(pa.string()))
            continue
        encoded = pc.dictionary_encode(chunk)
        texts = [decoded[v] if v in decoded else decoded.setdefault(v, v.decode(codec)) for v in encoded.dictionary.to_pylist()]
        chunks.append(pa.DictionaryArray.from_arrays(encoded.indices, pa.array(texts, type=pa.string())).cast(pa.string()))
    return pa.chunked_array(chunks, type=pa.string())


def _suggest_encoding(path: Path, source: Source, sample: bytes, encoding: str, delimiter: str) -> None:
    """Mapped columns are missing: when the header has them in another encoding (a GBK file
    declared utf-8 decodes into other Chinese characters without an error), say which."""
    for other in dict.fromkeys([detect_encoding(sample), "gb18030", "utf-8", "latin-1"]):
        if codecs.lookup(other).name == codecs.lookup(encoding).name:
            continue
        try:
            text = codecs.getincrementaldecoder(other)().decode(sample, final=False)
            rows = list(itertools.islice(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), source.header_row,
                                         source.header_row + 1))
        except (UnicodeError, csv.Error):
            continue
        if rows and set(source.columns) <= {c.replace("\ufeff", "").strip() for c in rows[0]}:
            said = f"`encoding: {source.encoding}` of source {source.name!r} says" if source.encoding != "auto" else "was detected"
            raise TierbookError(f"{path}: the mapped columns are in the header when it is read as {other}, not as {encoding} ({said}); "
                                f"set `encoding: {other}` of source {source.name!r}")


def _decode_head(sample: bytes, encoding: str) -> str:
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    return decoder.decode(sample, final=False)


def _parser_error(path: Path, source: Source, message: str, delimiter: str, encoding: str) -> TierbookError:
    fields = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", message)
    if fields:
        expected, line, saw = fields.groups()
        return TierbookError(f"{path}: line {line} has {saw} fields where the header has {expected} (a value holding the delimiter "
                             f"{delimiter!r} without quotes?); quote such values in the export or set `delimiter` of source {source.name!r}")
    if "EOF inside string" in message:
        tail = _tail_text(path, encoding)
        if tail is not None and not tail.endswith(("\n", "\r")):
            return TierbookError(f"{path}: the last row is cut off inside a quoted value (no closing quote, no line end): the file looks "
                                 f"truncated (cut off while exporting or copying); export or copy it again")
        return TierbookError(f"{path}: a quoted value is never closed ({message.strip().splitlines()[0]}); a stray \" in the data? "
                             f"fix the quoting in the export")
    return TierbookError(f"{path}: cannot be read as csv ({message.strip().splitlines()[0]}); check `encoding` and `delimiter` of source {source.name!r}")


def _tail_text(path: Path, encoding: str, n: int = 65_536) -> str | None:
    """The last ``n`` bytes of a plain (uncompressed) file as text; None for a compressed file."""
    if path.suffix.lower() == ".gz":
        return None
    size = path.stat().st_size
    with open(path, "rb") as fh:
        codec, skip = _explicit_codec(encoding, fh.read(4))
        width = 4 if "32" in codec else 2 if "16" in codec else 1
        start = max(skip, size - n)
        fh.seek(start - (start - skip) % width)
        return fh.read().decode(codec, errors="replace")


def _check_not_truncated(path: Path, frame: pd.DataFrame, encoding: str, delimiter: str) -> None:
    """Stop when the last line has fewer fields than the header and no line end: the file was cut off.

    A last line without a line end but with every field is accepted (many exports end so); its last
    value may still be cut, which no reader can tell."""
    tail = _tail_text(path, encoding)
    if tail is None or not tail or tail.endswith(("\n", "\r")) or frame.empty:
        return
    last = tail.rsplit("\n", 1)[-1]
    fields = next(csv.reader([last], delimiter=delimiter), [])
    if len(fields) < len(frame.columns):
        raise TierbookError(f"{path}: the last row (row {len(frame):,}) stops after {len(fields)} of {len(frame.columns)} columns with no "
                            f"line end: the file looks truncated (cut off while exporting or copying); export or copy it again")


def _read_excel(source: Source, path: Path, nrows: int | None):
    sheet = 0 if source.sheet is None else source.sheet
    needed = [*source.columns, *getattr(source, "attributes", {}), *getattr(source, "outcomes", {})]
    # the check before a run reads the first rows only (a margin for empty rows left out of the file)
    head = None if nrows is None else workbook.head_copy(path, sheet, source.header_row + 1 + max(nrows, 30) + 50)

    def book() -> Path | io.BytesIO:
        return path if head is None else io.BytesIO(head)

    frame = workbook.read_sheet(path if head is None else head, sheet, source.header_row, nrows, needed)

    def top_rows() -> list[list[str]]:
        cells = pd.read_excel(book(), sheet_name=sheet, header=None, dtype=object, engine="calamine", nrows=30)
        return [["" if pd.isna(v) else str(v).strip() for v in row] for row in cells.itertuples(index=False)]

    if frame is not None:
        return frame, top_rows
    try:
        frame = pd.read_excel(book(), sheet_name=sheet, header=source.header_row, dtype=object, engine="calamine", nrows=nrows)
    except ValueError as exc:
        if "not found" in str(exc).lower() or "worksheet" in str(exc).lower():
            sheets = pd.ExcelFile(path, engine="calamine").sheet_names
            raise TierbookError(f"{path}: no sheet {sheet!r}; sheets are {sheets}; fix `sheet` of source {source.name!r}") from None
        raise _damaged_workbook(path, exc) from None
    except Exception as exc:  # noqa: BLE001 - calamine raises its own types on a damaged workbook; one line, never a traceback
        raise _damaged_workbook(path, exc) from None
    return frame, top_rows


def _damaged_workbook(path: Path, exc: Exception) -> TierbookError:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return TierbookError(f"{path}: cannot be read as an Excel workbook ({first}); the file is damaged or cut off: open it in Excel "
                         f"and save it again, or export it again")


def _read_parquet(path: Path, nrows: int | None) -> pd.DataFrame:
    if nrows is None:
        frame = pd.read_parquet(path)
    else:
        import pyarrow.parquet as pq

        batch = next(pq.ParquetFile(path).iter_batches(batch_size=nrows), None)
        frame = batch.to_pandas() if batch is not None else pd.read_parquet(path)
    return frame.astype(object).where(frame.notna(), None)


# --------------------------------------------------------------------------- mapping onto the contract


def _not_blank(raw: pd.Series) -> pd.Series:
    """Whether each value is more than spaces: text is stripped (as Arrow strings, 10x faster than Python's); a
    workbook's numbers and dates are never blank and are not written out as text to tell (13 s for the 1M-member
    workbook's two date columns, 2026-12-02)."""
    if not (raw.dtype == object or isinstance(raw.dtype, pd.StringDtype)):  # a workbook's typed dates (workbook.read_sheet)
        return pd.Series(True, index=raw.index)
    if raw.dtype == object:
        is_text = np.fromiter((isinstance(v, str) for v in raw.array), dtype=bool, count=len(raw))
        if not is_text.all():
            blank = np.zeros(len(raw), dtype=bool)
            blank[is_text] = (raw[is_text].astype("string[pyarrow]").str.strip() == "").to_numpy(dtype=bool, na_value=False)
            return pd.Series(~blank, index=raw.index)
    return (raw.astype("string[pyarrow]").str.strip() != "").fillna(True)


def _check_parse_rate(parsed: pd.Series, raw: pd.Series, path: Path, column: str, target: str, hint: str | Callable[[], str]) -> None:
    present = raw.notna() & _not_blank(raw)
    n = int(present.sum())
    if n == 0:
        return
    ok = int((parsed.notna() & present).sum())
    if ok / n < MIN_PARSE_SHARE:
        bad = [privacy.mask_text(b) for b in raw[present & parsed.isna()].astype(str).head(3)]  # the line reaches the run's index page
        raise TierbookError(
            f"{path}: column {column!r} (mapped to {target}) parses for only {ok / n:.0%} of {n} values "
            f"(e.g. {', '.join(repr(b) for b in bad)}); {hint() if callable(hint) else hint}"
        )


def map_source(raw: RawTable, source: Source, params: Params) -> pd.DataFrame:
    """Rename, parse and type a source's columns onto the contract.

    Returns one row per input row with ``source`` and ``row`` (1 = the first row below the header)
    and every mapped contract column; transaction sources also get ``amount`` (given, or
    quantity x unit_price), ``is_return`` from the source's return rules, ``channel``, ``currency``,
    ``row_hash`` (a hash of the raw row, for exact-duplicate detection) and ``parse_detail`` (the
    text of a date or amount that did not parse, for rejected.csv); their ``order_status`` only feeds the return rules
    and is not returned. PII columns are dropped here
    and never reach a clean table.
    """
    contract = TABLES[source.table]
    frame = raw.frame
    source = privacy.readable(source, params)  # privacy.pii_columns are not read, even as attributes
    _require_columns(raw.path, list(frame.columns), source, raw.top_rows)
    out = pd.DataFrame({"source": source.name, "row": np.arange(1, len(frame) + 1)}, index=frame.index)
    details = []
    for column, target in source.columns.items():
        spec = contract[target]
        if spec.role == "pii":
            continue
        values = frame[column]
        if spec.kind == "id":
            parsed = parse_ids(values)
        elif spec.kind == "text":
            parsed = parse_text(values)
        elif spec.kind in ("number", "integer"):
            parsed = parse_numbers(values)
            _check_parse_rate(parsed, values, raw.path, column, target, "map the right column or clean its format")
        else:
            try:
                parsed = parse_datetimes(values, source.date_format, source.dayfirst)
            except DateOrderConflict as conflict:
                raise TierbookError(
                    f"{raw.path}: column {column!r} (mapped to {target}) mixes day-first dates such as {conflict.day_first.iloc[0]!r} "
                    f"({_rows(len(conflict.day_first))}) and month-first dates such as {conflict.month_first.iloc[0]!r} "
                    f"({_rows(len(conflict.month_first))}), so a date such as 05/01/2024 cannot be read safely; set `date_format` of "
                    f"source {source.name!r} (e.g. \"%d/%m/%Y\"): values in another format are then rejected row by row") from None
            _check_parse_rate(parsed, values, raw.path, column, target, lambda: _date_hint(values))  # the hint only when the check fails
            if spec.kind == "date":
                parsed = parsed.dt.normalize()
        out[target] = parsed
        if target in ("order_date", "amount", "quantity", "unit_price"):
            details.append(_unparsed(column, values, parsed))
    for column, name in getattr(source, "attributes", {}).items():
        if column not in frame.columns:
            raise TierbookError(f"{raw.path}: attribute column {column!r} is not in the file; fix `attributes` of source {source.name!r}")
        out[name] = parse_text(frame[column])
    for column, outcome in getattr(source, "outcomes", {}).items():
        if column not in frame.columns:
            raise TierbookError(f"{raw.path}: outcome column {column!r} is not in the file; fix `outcomes` of source {source.name!r}")
        out[outcome] = parse_numbers(frame[column])
    if isinstance(source, TransactionSource):
        out = _transaction_columns(out, frame, source, params)
        # the text that did not parse goes to rejected.csv: a phone or e-mail typed into a date or amount cell is masked
        out["parse_detail"] = privacy.mask_free_text(_join_details(details, out.index))
    return privacy.scrub(out, source)  # phones and e-mails inside comments and attributes masked before any table has them


def _rows(n: int) -> str:
    return f"{n:,} row" + ("" if n == 1 else "s")


def _date_hint(values: pd.Series) -> str:
    text = values.dropna().astype(str).str.strip().head(1000)
    if len(text) and text.str.fullmatch(r"[2-6]\d{4}(?:\.\d+)?").all():
        return ("they look like Excel day numbers (45296 is 2024-01-05): format the column as dates in Excel and export it again, "
                "or map the right column")
    return "set `date_format` of the source (e.g. \"%Y/%m/%d %H:%M\")"


def _unparsed(column: str, raw: pd.Series, parsed: pd.Series) -> pd.Series:
    """Per row: the source column and its text when it did not parse ("交易时间 '2025-13-45'"), or "交易时间 empty"."""
    detail = pd.Series(pd.NA, index=raw.index, dtype="string")
    missing = parsed.isna()
    if not missing.any():
        return detail
    text = raw[missing].astype("string").str.strip()
    empty = text.isna() | (text == "")
    detail[empty[empty].index] = f"{column} empty"
    bad = text[~empty]
    detail[bad.index] = column + " " + bad.map(lambda v: repr(v[:60]))
    return detail


def _join_details(details: list[pd.Series], index: pd.Index) -> pd.Series:
    """Per row: its ``_unparsed`` details joined by "; " (missing when it has none). Joined on the rows that have one
    only: on every row, the 6.4M POS lines of the 1.4M-customer demo (none with a detail) took 1.0 s, on the way from
    reading to cleaning (2026-12-05)."""
    joined = pd.Series(pd.NA, index=index, dtype="string")
    present = [(detail, mask) for detail in details if (mask := detail.notna().to_numpy()).any()]
    if not present:
        return joined
    details = [detail for detail, _ in present]
    rows = np.logical_or.reduce([mask for _, mask in present])
    part = joined[rows]
    for detail in details:
        detail = detail[rows]
        part = part.where(detail.isna(), part.fillna("").where(part.isna(), part + "; ") + detail)
    joined[rows] = part.array
    return joined


def _transaction_columns(out: pd.DataFrame, frame: pd.DataFrame, source: TransactionSource, params: Params) -> pd.DataFrame:
    if "amount" not in out:
        out["amount"] = out["quantity"] * out["unit_price"]
    is_return = pd.Series(False, index=out.index)
    for rule in source.returns:
        values = out[rule.column]
        if rule.negative:
            hit = pd.to_numeric(values, errors="coerce") < 0
        elif rule.startswith is not None:
            hit = values.astype("string").str.startswith(rule.startswith)
        else:
            hit = values.astype("string").isin([str(v) for v in rule.equals])
        is_return |= hit.fillna(False).astype(bool)
    out["is_return"] = is_return
    if "order_status" in out:  # used by the return rules only: 130 MB of the 10.1M lines of 1.4M customers (2026-12-04)
        del out["order_status"]
    if "channel" not in out:
        out["channel"] = source.channel or source.name
    else:
        out["channel"] = out["channel"].fillna(source.channel or source.name)
    if "currency" not in out:
        out["currency"] = source.currency or params.currency
    out["row_hash"] = row_hash(frame)
    return out


def row_hash(frame: pd.DataFrame) -> np.ndarray:
    """A 64-bit hash of each row's text (equal rows, equal hashes), for exact-duplicate detection.

    Arrow string columns (every CSV source) are hashed by DuckDB's ``hash(...)``, multi-threaded:
    0.12 s for the 100k demo's 455k POS lines against 1.6 s for pandas' hash_pandas_object, which
    turns each Arrow column into Python objects first (2026-12-02). Other sources (Excel, Parquet)
    are hashed by pandas, as text."""
    if len(frame.columns) and len(frame) and all(isinstance(t, pd.StringDtype) and t.storage == "pyarrow" for t in frame.dtypes):
        import duckdb
        import pyarrow as pa

        table = pa.table({f"c{i}": pa.array(frame[c].array) for i, c in enumerate(frame.columns)})
        with duckdb.connect() as con:
            con.execute("SET preserve_insertion_order = true")  # the default, said: the hashes come back in row order
            con.register("source_rows", table)
            columns = ", ".join(f"c{i}" for i in range(len(frame.columns)))
            return con.execute(f"SELECT hash({columns}) AS h FROM source_rows").fetchnumpy()["h"]
    text = frame if all(isinstance(t, pd.StringDtype) for t in frame.dtypes) else frame.astype("string")
    return pd.util.hash_pandas_object(text, index=False).to_numpy()


def read_all(params: Params, root: Path) -> tuple[dict[str, pd.DataFrame], list[dict]]:
    """Read and map every declared source. Returns ``{table: frame}`` (transaction sources
    concatenated) and one inventory record per file (path, sha256, rows, encoding).

    Two sources at a time, in threads: reading and parsing run mostly in Arrow and fastexcel, which
    let go of Python's lock, so one file is read while another is parsed (see ``READ_THREADS``). The
    frames, the inventory and the first error are those of reading them one after another."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
        return Reading(params, root, pool).finish()


# the transaction lines' text columns that repeat a few values (each source's name, channel and currency, the store,
# the product category, the region) are categoricals: as Python strings they took 8 bytes a line, 55 MB a column for
# the 7.2M lines of 1M customers, held through cleaning and the writes of the data stage (2026-12-02); as Arrow strings
# the store and category of the 10.1M lines of 1.4M customers took 196 and 136 MB, as categoricals 10 MB each
# (2026-12-04). The clean files hold them as text all the same
REPEATED_TEXT = ("source", "channel", "currency", "store", "category", "region")


def _as_categories(frame: pd.DataFrame, columns: tuple[str, ...]) -> None:
    """The text columns (object or strings) among ``columns`` of ``frame`` made categoricals (sorted categories), in place."""
    for column in columns:
        if column in frame and (frame[column].dtype == object or isinstance(frame[column].dtype, pd.StringDtype)):
            frame[column] = _as_category(frame[column])


def _as_category(values: pd.Series) -> pd.Series:
    """``values.astype("category")``; a column of one text on every row (a source's name, channel or currency, set from
    params) without hashing each row: 0.2 s a column for the 6.4M POS lines of the 1.4M-customer demo, on the way from
    reading to cleaning (2026-12-05)."""
    array = values.to_numpy() if values.dtype == object else None
    if array is not None and len(array) and isinstance(array[0], str) and (array == array[0]).all():
        return pd.Series(pd.Categorical.from_codes(np.zeros(len(array), dtype=np.int8), categories=[array[0]]),
                         index=values.index, name=values.name)
    return values.astype("category")


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """``pd.concat(frames, ignore_index=True)``, a column that is categorical in every frame staying categorical (with
    the sorted union of their categories): pandas' concat makes text of categoricals whose categories differ."""
    for column in frames[0].columns:
        if len(frames) > 1 and all(isinstance(f[column].dtype, pd.CategoricalDtype) for f in frames if column in f):
            categories = pd.Index(sorted(set().union(*(f[column].cat.categories for f in frames if column in f))))
            for f in frames:
                if column in f:
                    f[column] = f[column].cat.set_categories(categories)
    return pd.concat(frames, ignore_index=True)


class Reading:
    """The declared sources being read and mapped in ``pool``'s threads, in the order params list them, each
    table's frame taken as soon as its sources are read (``table``) while the others are still being read: the data
    stage cleans the transactions while the members workbook is read (fastexcel lets go of Python's lock). With the
    orders written beside the lines (``data.run_data_stage``), the 1M-customer demo's data stage took 56.4 and 54.3 s
    instead of 71.4 and 63.1 s (interleaved runs, 2026-12-02); three threads, the workbook read beside both transaction
    sources, took 7-9 s longer. ``finish`` gives what ``read_all`` gives.

    The first error raised is that of the first declared source that fails among those waited for: ``table`` waits
    for its own sources only, ``finish`` for all. A failing source stops the sources not yet started."""

    def __init__(self, params: Params, root: Path, pool) -> None:
        self.params = params
        self.declared: list[Source] = [source for _, source in params.sources.all()]
        privacy.check_params(params)
        self.futures = [pool.submit(self._one, params.source_path(root, source), source) for source in self.declared]
        self.done: dict[int, tuple] = {}  # the sources ``table`` took: their record and header, without the frame

    def _one(self, path: Path, source: Source) -> tuple[dict, list[str], pd.DataFrame]:
        raw = read_source(source, path)
        record = {"source": source.name, "table": source.table, "path": str(path), "sha256": raw.sha256,
                  "format": _format_of(path, source.format), "encoding": raw.encoding,
                  "rows": len(raw.frame), "columns": len(raw.frame.columns)}
        header = list(raw.frame.columns)
        mapped = map_source(raw, source, self.params)
        del raw  # the raw text
        if source.table == "transactions":
            _as_categories(mapped, REPEATED_TEXT)
        # what reading and mapping freed in this thread's malloc arena: the 1M-customer demo's cleaning, beside the members
        # workbook being read, peaked at 3.88 GiB without this and 3.67 GiB with it (2026-12-02)
        give_back_memory()
        return record, header, mapped

    def _result(self, i: int) -> tuple[dict, list[str], pd.DataFrame | None]:
        if self.futures[i] is None:  # taken by ``table``
            return self.done[i]
        try:
            return self.futures[i].result()
        except BaseException:
            for future in self.futures:
                if future is not None:
                    future.cancel()
            raise

    def table(self, name: str) -> pd.DataFrame:
        """The mapped rows of table ``name`` (its sources concatenated, in order), once they are read; each source's
        own frame is let go of once concatenated."""
        frames = []
        for i, source in enumerate(self.declared):
            if source.table == name:
                record, header, mapped = self._result(i)
                self.futures[i], self.done[i] = None, (record, header, None)
                frames.append(mapped)
                del mapped
        table = _concat(frames)
        del frames
        give_back_memory()  # the sources' own frames, once concatenated
        return table

    def finish(self) -> tuple[dict[str, pd.DataFrame], list[dict]]:
        """Every table not taken by ``table`` (``{table: frame}``) and the inventory of every file, once all are read;
        the pii columns params list are checked against the files' headers (before anything is written: a misspelt
        one would protect nothing)."""
        tables: dict[str, list[pd.DataFrame]] = {}
        inventory, headers = [], {}
        for i, source in enumerate(self.declared):
            record, header, mapped = self._result(i)
            inventory.append(record)
            headers[source.name] = header
            if i not in self.done:  # ``table`` takes every source of its table
                tables.setdefault(source.table, []).append(mapped)
        privacy.check_headers(self.params, headers)
        return {name: _concat(frames) for name, frames in tables.items()}, inventory


def check_sources(params: Params, root: Path) -> None:
    """Before any run: every declared file exists, is the format, encoding and shape params say,
    has the mapped columns, and its first rows (CHECK_BYTES of a CSV, CHECK_ROWS of a workbook or
    Parquet file) map onto the contract the way the data stage will map the whole file (dates and
    amounts parse, one date order). Raises TierbookError with the one line to fix."""
    declared: list[Source] = [source for _, source in params.sources.all()]
    privacy.check_params(params)
    for source in declared:
        path = params.source_path(root, source)
        if not path.exists():
            raise TierbookError(f"source {source.name!r}: file {path} does not exist; put the export there or fix `path` in params/{params.client}.yaml")
        map_source(read_source(source, path, head_only=True), source, params)


def _require_columns(path: Path, header: list[str], source: Source, top_rows: Callable[[], list[list[str]]] | None = None) -> None:
    """Every mapped column is in the header, else one line naming each missing column with the
    closest name present, and the row that holds the mapped names when it is not the header row
    (a title or group row above the real header, e.g. merged cells in a workbook)."""
    missing = [c for c in source.columns if c not in header]
    if not missing:
        return
    others = [h for h in header if h not in source.columns]
    close = {m: next(iter(difflib.get_close_matches(m, others, n=1, cutoff=0.5)), None) for m in missing}
    listed = [str(h)[:40] for h in header[:12]]
    if len(missing) == 1:
        m = missing[0]
        hint = f"did you mean {close[m]!r}?" if close[m] else f"the file's columns are {listed};"
        message = f"{path}: column {m!r} (mapped to {source.columns[m]}) is not in the file; {hint}"
    else:
        named = ", ".join(f"{m!r} (mapped to {source.columns[m]}" + (f"; closest {close[m]!r})" if close[m] else ")") for m in missing)
        message = f"{path}: {len(missing)} mapped columns are not in the file: {named};"
        if not any(close.values()):
            message += f" the file's columns are {listed};"
    rows = top_rows() if top_rows is not None else []
    holding = next((i for i, row in enumerate(rows) if set(source.columns) <= {str(c).strip() for c in row}), None)
    if holding is not None and holding != source.header_row:
        raise TierbookError(f"{message} the mapped columns are all in row {holding + 1} of the file (below title or group rows): "
                            f"set `header_row: {holding}` of source {source.name!r}")
    raise TierbookError(f"{message} fix `columns` (or `header_row`) of source {source.name!r}")
