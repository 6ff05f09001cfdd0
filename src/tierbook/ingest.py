"""Ingestion: read each declared source (CSV / Excel / Parquet, any encoding) and map it onto the
data contract (``tierbook.contract``).

Reading never modifies or copies an input file. Every value is read as text first and parsed by
the contract's column kind here, so zero-padded ids survive and a bad value becomes a missing
value that the cleaning stage rejects with a reason, instead of a crash. A column that is wrong as
a whole (not in the file, mostly unparseable) stops the run with one line naming the file, the
column and the fix.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import gzip
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import privacy
from .contract import TABLES
from .errors import TierbookError
from .params import Params, Source, TransactionSource

SAMPLE_BYTES = 2_000_000
# GB2312 and GBK are subsets of GB18030: decoding with the superset never loses a character.
CHINESE_CODECS = {"gb2312": "gb18030", "gbk": "gb18030", "hz": "gb18030", "gb18030": "gb18030"}
KOREAN_CODECS = {"cp949", "euckr", "johab", "iso2022kr"}
# A column must parse for at least this share of its non-empty values, else it is the wrong
# column or the wrong format and the run stops (single bad values are rejected row by row).
MIN_PARSE_SHARE = 0.5
CURRENCY_NOISE = r"[\s,¥￥$€£]|RMB|CNY|USD|EUR|GBP|元"


@dataclass
class RawTable:
    """A source as read: every column as text (object dtype), plus where it came from."""

    source: str
    path: Path
    frame: pd.DataFrame
    encoding: str | None
    sha256: str


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


def _head_bytes(path: Path, n: int = SAMPLE_BYTES) -> bytes:
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rb") as fh:
        return fh.read(n)


def detect_encoding(sample: bytes) -> str:
    """UTF-8 (with or without BOM) when the bytes decode as UTF-8, else the detected codec.

    Chinese codecs are widened to GB18030 (a superset of GBK and GB2312).
    """
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
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
    from charset_normalizer import from_bytes

    best = from_bytes(sample).best()
    if best is None:
        return "latin-1"
    name = best.encoding.lower().replace("_", "")
    if name in KOREAN_CODECS:
        # a GBK export whose only Chinese is a short header (ids, dates and numbers below it) is often
        # taken for Korean: every EUC-KR byte pair is a valid GBK pair, and Chinese is what these clients write
        try:
            sample.decode("gb18030")
            return "gb18030"
        except UnicodeDecodeError:
            pass
    return CHINESE_CODECS.get(name, best.encoding)


def _sniff_delimiter(text: str) -> str:
    lines = "\n".join(text.splitlines()[:50])
    try:
        return csv.Sniffer().sniff(lines, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def read_source(source: Source, path: Path) -> RawTable:
    """Read one source file as text columns. Raises TierbookError naming the file and the fix."""
    if not path.exists():
        raise TierbookError(f"source {source.name!r}: file {path} does not exist; put the export there or fix `path` in params")
    fmt = _format_of(path, source.format)
    encoding = None
    try:
        if fmt == "csv":
            frame, encoding = _read_csv(source, path)
        elif fmt == "excel":
            frame = _read_excel(source, path)
        else:
            frame = pd.read_parquet(path)
            frame = frame.astype(object).where(frame.notna(), None)
    except TierbookError:
        raise
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TierbookError(f"{path}: cannot be read as {fmt} ({first}); check `format`, `encoding` and `delimiter` of source {source.name!r}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return RawTable(source.name, path, frame.reset_index(drop=True), encoding, file_sha256(path))


def _read_csv(source: Source, path: Path) -> tuple[pd.DataFrame, str]:
    sample = _head_bytes(path)
    if not sample.strip():
        raise TierbookError(f"{path}: the file is empty; export it again or remove source {source.name!r}")
    encoding = detect_encoding(sample) if source.encoding == "auto" else source.encoding
    delimiter = source.delimiter
    if delimiter == "auto":
        delimiter = _sniff_delimiter(sample.decode(encoding, errors="replace"))
    try:
        frame = pd.read_csv(
            path, encoding=encoding, sep=delimiter, dtype=str, keep_default_na=False, na_values=[""],
            skiprows=source.header_row, skipinitialspace=True,
        )
    except UnicodeDecodeError as exc:
        raise TierbookError(
            f"{path}: bytes at position {exc.start} are not valid {encoding}; set `encoding:` of source {source.name!r} "
            f"(e.g. gb18030 or utf-8)"
        ) from None
    except pd.errors.EmptyDataError:
        raise TierbookError(f"{path}: no header row found; check `header_row` of source {source.name!r}") from None
    return frame.astype(object).where(frame.notna(), None), encoding


def _read_excel(source: Source, path: Path) -> pd.DataFrame:
    sheet = 0 if source.sheet is None else source.sheet
    try:
        return pd.read_excel(path, sheet_name=sheet, header=source.header_row, dtype=object, engine="calamine")
    except ValueError as exc:
        if "not found" in str(exc).lower() or "worksheet" in str(exc).lower():
            sheets = pd.ExcelFile(path, engine="calamine").sheet_names
            raise TierbookError(f"{path}: no sheet {sheet!r}; sheets are {sheets}; fix `sheet` of source {source.name!r}") from None
        raise


# --------------------------------------------------------------------------- parsing


def parse_ids(values: pd.Series) -> pd.Series:
    """Ids as stripped strings; Excel's 12345.0 becomes '12345'; blanks become missing."""
    def one(v):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return None
        if isinstance(v, float) and v.is_integer():
            return str(int(v))
        text = str(v).strip()
        return text or None

    return pd.Series([one(v) for v in values], index=values.index, dtype="string")


def parse_text(values: pd.Series) -> pd.Series:
    text = values.astype("string").str.strip()
    return text.mask(text == "")


def parse_numbers(values: pd.Series) -> pd.Series:
    """Numbers from text such as '¥1,234.50', '-¥120.00', ' 3 '; unparseable -> NaN."""
    if pd.api.types.is_numeric_dtype(values):
        return values.astype(float)
    text = values.astype("string").str.replace(CURRENCY_NOISE, "", regex=True)
    return pd.to_numeric(text, errors="coerce").astype(float)


def parse_datetimes(values: pd.Series, date_format: str | None, dayfirst: bool) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.dt.tz_localize(None) if values.dt.tz is not None else values
    present = values.notna()
    if not present.any():
        return pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
    if all(isinstance(v, pd.Timestamp | np.datetime64) or v is None for v in values.head(100)) and date_format is None:
        return pd.to_datetime(values, errors="coerce")
    text = values.astype("string").str.strip()
    if date_format:
        return pd.to_datetime(text, format=date_format, errors="coerce")
    parsed = pd.to_datetime(text, format="ISO8601", errors="coerce")
    if parsed[present].isna().mean() > 0.1:
        mixed = pd.to_datetime(text, format="mixed", dayfirst=dayfirst, errors="coerce")
        if mixed.notna().sum() > parsed.notna().sum():
            parsed = mixed
    return parsed


def _check_parse_rate(parsed: pd.Series, raw: pd.Series, path: Path, column: str, target: str, hint: str) -> None:
    present = raw.notna() & (raw.astype("string").str.strip() != "")
    n = int(present.sum())
    if n == 0:
        return
    ok = int((parsed.notna() & present).sum())
    if ok / n < MIN_PARSE_SHARE:
        bad = raw[present & parsed.isna()].astype(str).head(3).tolist()
        raise TierbookError(
            f"{path}: column {column!r} (mapped to {target}) parses for only {ok / n:.0%} of {n} values "
            f"(e.g. {', '.join(repr(b) for b in bad)}); {hint}"
        )


def map_source(raw: RawTable, source: Source, params: Params) -> pd.DataFrame:
    """Rename, parse and type a source's columns onto the contract.

    Returns one row per input row with ``source`` and ``row`` (1 = the first row below the header)
    and every mapped contract column; transaction sources also get ``amount`` (given, or
    quantity x unit_price), ``is_return`` from the source's return rules, ``channel``, ``currency``
    and ``row_hash`` (a hash of the raw row, for exact-duplicate detection). PII columns are
    dropped here and never reach a clean table.
    """
    contract = TABLES[source.table]
    frame = raw.frame
    source = privacy.readable(source, params)  # privacy.pii_columns are not read, even as attributes
    _require_columns(raw.path, list(frame.columns), source)
    out = pd.DataFrame({"source": source.name, "row": np.arange(1, len(frame) + 1)}, index=frame.index)
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
            parsed = parse_datetimes(values, source.date_format, source.dayfirst)
            _check_parse_rate(parsed, values, raw.path, column, target, "set `date_format` of the source (e.g. \"%Y/%m/%d %H:%M\")")
            if spec.kind == "date":
                parsed = parsed.dt.normalize()
        out[target] = parsed
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
    return privacy.scrub(out, source)  # phones and e-mails inside comments and attributes masked before any table has them


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
    if "channel" not in out:
        out["channel"] = source.channel or source.name
    else:
        out["channel"] = out["channel"].fillna(source.channel or source.name)
    if "currency" not in out:
        out["currency"] = source.currency or params.currency
    out["row_hash"] = pd.util.hash_pandas_object(frame.astype("string"), index=False).to_numpy()
    return out


def read_all(params: Params, root: Path) -> tuple[dict[str, pd.DataFrame], list[dict]]:
    """Read and map every declared source. Returns ``{table: frame}`` (transaction sources
    concatenated) and one inventory record per file (path, sha256, rows, encoding)."""
    tables: dict[str, list[pd.DataFrame]] = {}
    inventory = []
    declared: list[Source] = list(params.sources.transactions)
    declared += [s for s in (params.sources.customers, params.sources.survey, params.sources.experiment) if s is not None]
    privacy.check_params(params)
    headers = {}
    for source in declared:
        path = params.source_path(root, source)
        raw = read_source(source, path)
        headers[source.name] = list(raw.frame.columns)
        inventory.append({
            "source": source.name, "table": source.table, "path": str(path), "sha256": raw.sha256,
            "format": _format_of(path, source.format), "encoding": raw.encoding,
            "rows": len(raw.frame), "columns": len(raw.frame.columns),
        })
        tables.setdefault(source.table, []).append(map_source(raw, source, params))
    privacy.check_headers(params, headers)  # before anything is written: a misspelt pii column protects nothing
    return {name: pd.concat(frames, ignore_index=True) for name, frames in tables.items()}, inventory


def check_sources(params: Params, root: Path) -> None:
    """Before any notebook runs: every declared file exists and has the mapped columns (header only)."""
    declared: list[Source] = list(params.sources.transactions)
    declared += [s for s in (params.sources.customers, params.sources.survey, params.sources.experiment) if s is not None]
    privacy.check_params(params)
    for source in declared:
        path = params.source_path(root, source)
        if not path.exists():
            raise TierbookError(f"source {source.name!r}: file {path} does not exist; put the export there or fix `path` in params/{params.client}.yaml")
        if _format_of(path, source.format) != "csv":
            continue  # Excel and Parquet headers are checked when the data stage reads them
        sample = _head_bytes(path, 200_000)
        if not sample.strip():
            raise TierbookError(f"{path}: the file is empty; export it again or remove source {source.name!r}")
        encoding = detect_encoding(sample) if source.encoding == "auto" else source.encoding
        text = sample.decode(encoding, errors="replace")
        delimiter = _sniff_delimiter(text) if source.delimiter == "auto" else source.delimiter
        lines = text.splitlines()
        if len(lines) <= source.header_row:
            raise TierbookError(f"{path}: has no row {source.header_row} for the header; fix `header_row` of source {source.name!r}")
        header = [h.strip() for h in next(csv.reader(io.StringIO(lines[source.header_row]), delimiter=delimiter))]
        _require_columns(path, header, source)


def _require_columns(path: Path, header: list[str], source: Source) -> None:
    missing = [c for c in source.columns if c not in header]
    if missing:
        close = difflib.get_close_matches(missing[0], header, n=1, cutoff=0.5)
        hint = f"did you mean {close[0]!r}?" if close else f"the file's columns are {header[:12]};"
        raise TierbookError(
            f"{path}: column {missing[0]!r} (mapped to {source.columns[missing[0]]}) is not in the file; {hint} "
            f"fix `columns` (or `header_row`) of source {source.name!r}"
        )
