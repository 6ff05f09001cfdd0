"""Onboarding a new client (``make init CLIENT=x DATA=folder``): look at every raw export in a
folder, guess what each file is and the role of each column, and draft ``params/<client>.yaml``
with the evidence for every guess (``tierbook.onboard_roles`` holds the role vocabulary and the
evidence from values; ``tierbook.onboard_page`` writes the data-profile page).

Files are only read (never modified, never copied); their sha256 is recorded and checked again
before anything is written. Roles are guessed on the first SAMPLE_ROWS rows of each table. Rows,
missing and distinct values, the ranges of numbers and dates and exact duplicates come from a full
scan: DuckDB streams UTF-8 / Latin-1 CSV and Parquet; GBK CSV is read by pandas in chunks; a
workbook's sheets are read whole. A 10M-row CSV is profiled in about 5 s where pandas.read_csv
alone takes about 17 s (bench/init_time.py).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import TierbookError
from .ingest import _head_bytes, _sniff_delimiter, detect_encoding, file_sha256, parse_numbers
from .summary import unique_sorted
from .onboard_roles import (
    CURRENCY_SYMBOLS,
    DATE_ROLES,
    FLAG_YES,
    NUMBER_ROLES,
    PII,
    RETURN_WORDS,
    ColumnGuess,
    classify,
    date_parse,
    guess_column,
    mask,
    normalise,
    settle_roles,
)

SAMPLE_ROWS = 50_000
APPROX_BYTES = 100 * 2**20  # files larger than this get approximate distinct counts (DuckDB's HyperLogLog)
EXTENSIONS = (".csv", ".txt", ".tsv", ".gz", ".xlsx", ".xlsm", ".xls", ".parquet", ".pq")

@dataclass
class FileProfile:
    path: Path
    sha256: str
    format: str
    encoding: str | None
    delimiter: str | None
    sheet: str | None
    header_row: int
    has_header: bool
    rows: int
    columns: list[ColumnGuess]
    table: str  # transactions | customers | survey | experiment | unknown
    table_evidence: str
    sample: pd.DataFrame  # the first rows, PII masked
    duplicates: int = 0  # exact duplicate rows (full scan where possible)
    counted_by: str = "pandas"
    date_span: tuple[str, str] | None = None
    currency: str | None = None
    returns: list[dict] = field(default_factory=list)
    channel: str | None = None
    notes: list[str] = field(default_factory=list)

    def role_of(self, role: str) -> str | None:
        for c in self.columns:
            if c.role == role:
                return c.column
        return None

    @property
    def label(self) -> str:
        return self.path.name + (f" [{self.sheet}]" if self.sheet is not None else "")


# --------------------------------------------------------------------------- reading


def find_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise TierbookError(f"{folder}: no such folder; give the folder of the client's exports, e.g. make init CLIENT=acme DATA=~/Downloads/acme")
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith((".", "~$"))
                   and any(p.name.lower().endswith(ext) for ext in EXTENSIONS))
    if not files:
        raise TierbookError(f"{folder}: no CSV, Excel or Parquet file in it; put the exports there (sub-folders are not read)")
    return files


def _header_row(raw: pd.DataFrame) -> int:
    """The first of the top rows that is as wide as the table and all text: rows above it are titles."""
    top = raw.head(15)
    width = top.notna().sum(axis=1)
    full = width.max()
    for i, row in top.iterrows():
        values = row.dropna()
        if len(values) >= max(2, 0.8 * full) and all(isinstance(v, str) and not _numberlike(v) for v in values):
            return int(i)
    return 0


def _numberlike(text: str) -> bool:
    return bool(re.fullmatch(r"[-+]?[\d,.\s]+", text.strip()))


def read_tables(path: Path) -> list[tuple[pd.DataFrame, dict]]:
    """(sample frame as text, reading facts) per table in the file: one for CSV and Parquet, one per
    non-empty sheet of a workbook."""
    name = path.name.lower()
    if name.endswith((".xlsx", ".xlsm", ".xls")):
        out = []
        # the whole sheet (a workbook holds at most 1,048,576 rows): its counts are exact, its roles guessed on the first rows
        for sheet, raw in pd.read_excel(path, sheet_name=None, header=None, dtype=object, engine="calamine").items():
            raw = raw.dropna(how="all").dropna(axis=1, how="all")
            if raw.empty:
                continue
            raw = raw.reset_index(drop=True)
            h = _header_row(raw)
            full = raw.iloc[h + 1:].reset_index(drop=True)
            full.columns = [str(c).strip() for c in raw.iloc[h]]
            out.append((full.head(SAMPLE_ROWS), {"format": "excel", "encoding": None, "delimiter": None, "sheet": str(sheet), "header_row": h,
                                                 "has_header": True, "full": full}))
        return out
    if name.endswith((".parquet", ".pq")):
        import pyarrow.parquet as pq

        batch = next(pq.ParquetFile(path).iter_batches(batch_size=SAMPLE_ROWS), None)  # the first rows only, however big the file
        frame = batch.to_pandas() if batch is not None else pd.read_parquet(path)
        return [(frame, {"format": "parquet", "encoding": None, "delimiter": None, "sheet": None, "header_row": 0, "has_header": True})]
    head = _head_bytes(path)
    if not head.strip():
        raise TierbookError(f"{path}: the file is empty; export it again or remove it from the folder")
    encoding = detect_encoding(head)
    text = head.decode(encoding, errors="replace")
    first = text.splitlines()[0] if text.splitlines() else ""
    whitespace = "," not in first and ";" not in first and "\t" not in first and "|" not in first and len(first.split()) > 1
    delimiter = r"\s+" if whitespace else _sniff_delimiter(text)
    peek = pd.read_csv(path, encoding=encoding, sep=delimiter, header=None, dtype=str, nrows=20, engine="c",
                       keep_default_na=False, na_values=[""], skipinitialspace=True)
    has_header = not all(_numberlike(v) for v in peek.iloc[0].dropna().astype(str))
    frame = pd.read_csv(path, encoding=encoding, sep=delimiter, header=0 if has_header else None, dtype=str, nrows=SAMPLE_ROWS,
                        keep_default_na=False, na_values=[""], skipinitialspace=True, engine="c")
    if not has_header:
        frame.columns = [f"column_{i + 1}" for i in range(frame.shape[1])]
    frame.columns = [str(c).strip() for c in frame.columns]
    return [(frame, {"format": "csv", "encoding": encoding, "delimiter": delimiter, "sheet": None,
                     "header_row": 0, "has_header": has_header})]


def _returns(profile: FileProfile, frame: pd.DataFrame) -> list[dict]:
    rules = []
    status = profile.role_of("order_status")
    if status:
        values = frame[status].dropna().astype(str).str.strip()
        flag = getattr(next(c for c in profile.columns if c.column == status), "flag", False)
        hits = sorted({v for v in values.unique() if v.lower() in (FLAG_YES if flag else RETURN_WORDS)})
        if hits:
            share = values.isin(hits).mean()
            rules.append({"column": "order_status", "equals": hits, "why": f"{status} is {' / '.join(hits)} on {share:.1%} of rows"})
    order = profile.role_of("order_id")
    if order and not rules:
        ids = frame[order].dropna().astype(str).str.strip()
        first = ids.str[:1]
        digits = ids.str.fullmatch(r"\d+")
        letters = first[~digits & first.str.isalpha()]
        top = letters.value_counts()
        if digits.mean() > 0.5 and len(top) and top.iloc[0] >= 0.9 * len(letters) and 0.0001 < top.iloc[0] / len(ids) < 0.3:
            prefix = top.index[0]
            letters = letters[letters == prefix]
            rules.append({"column": "order_id", "startswith": prefix,
                          "why": f"{len(letters) / len(ids):.1%} of {order} start with {prefix!r} where the rest are numbers (cancellations)"})
    qty = profile.role_of("quantity") or profile.role_of("amount")
    if qty and not rules:
        neg = (parse_numbers(frame[qty].dropna().astype(str)) < 0).mean()
        if neg > 0:
            target = "quantity" if profile.role_of("quantity") else "amount"
            rules.append({"column": target, "negative": True, "why": f"{neg:.1%} of {qty} are negative"})
    return rules


def _channel(path: Path) -> str | None:
    name = path.stem.lower()
    if any(k in name for k in ("pos", "store", "shop_till", "门店", "线下", "till", "retail_store")):
        return "store"
    if any(k in name for k in ("ecom", "online", "web", "app", "电商", "线上", "taobao", "tmall", "jd")):
        return "online"
    return None


def _count(path: Path, facts: dict, frame: pd.DataFrame, columns: list[ColumnGuess]) -> tuple[int, int, str, dict]:
    """Rows, exact duplicate rows and per-column missing/distinct counts over the whole file: DuckDB
    streams UTF-8 / Latin-1 CSV and Parquet; other files are counted from the table read."""
    import duckdb

    encoding = (facts.get("encoding") or "").lower().replace("-sig", "")
    csv_ok = facts["format"] == "csv" and encoding in ("utf-8", "ascii", "latin-1", "iso-8859-1") and facts["has_header"] and facts["delimiter"] != r"\s+"
    if not (csv_ok or facts["format"] == "parquet"):
        if facts["format"] != "csv" or len(frame) < SAMPLE_ROWS:
            whole = facts.get("full", frame)
            per = {c.column: {"missing_share": float(whole[c.column].isna().mean()) if len(whole) else 0.0,
                              "distinct": int(whole[c.column].nunique())} for c in columns}
            for column, span in _frame_ranges(whole, columns).items():
                per[column]["range"] = span
            return len(whole), int(whole.astype(str).duplicated().sum()), "pandas (whole table)", per
        return _stream_count(path, facts, columns)
    try:
        return _duckdb_count(path, facts, columns, encoding)
    except duckdb.Error as exc:  # a file DuckDB's reader rejects (ragged rows, odd quoting): pandas reads it in chunks
        if facts["format"] != "csv":
            raise TierbookError(f"{path}: DuckDB cannot scan it ({str(exc).splitlines()[0]}); export it again as CSV (UTF-8)") from None
        rows, dup, counted_by, per = _stream_count(path, facts, columns)
        return rows, dup, counted_by + "; DuckDB could not parse it", per


def _range_columns(columns: list[ColumnGuess]) -> list[ColumnGuess]:
    """Columns whose min..max the page shows: numbers and dates with a role (never personal data)."""
    return [c for c in columns if not c.pii and (c.role in NUMBER_ROLES | {"nps", "csat", "outcome"} or c.role in DATE_ROLES)]


def _frame_ranges(frame: pd.DataFrame, columns: list[ColumnGuess]) -> dict[str, tuple]:
    out = {}
    for c in _range_columns(columns):
        values = frame[c.column].dropna()
        if c.role in DATE_ROLES:
            parsed = pd.to_datetime(values.astype(str).str.strip(), format=c.date_format, errors="coerce") if c.date_format \
                else pd.to_datetime(values, errors="coerce")
        else:
            parsed = parse_numbers(values.astype(str))
        parsed = parsed.dropna()
        if len(parsed):
            out[c.column] = (parsed.min(), parsed.max())
    return out


def _merge_range(a: tuple | None, b: tuple | None) -> tuple | None:
    return b if a is None else a if b is None else (min(a[0], b[0]), max(a[1], b[1]))


def _duckdb_count(path: Path, facts: dict, columns: list[ColumnGuess], encoding: str) -> tuple[int, int, str, dict]:
    """One streaming DuckDB pass: rows, non-missing and distinct values per column, min..max of the
    numbers and dates; a second pass for exact duplicate rows."""
    import duckdb

    con = duckdb.connect()
    if facts["format"] == "parquet":
        source = f"read_parquet('{path.as_posix()}')"
    else:
        enc = "latin-1" if encoding in ("latin-1", "iso-8859-1") else "utf-8"
        delim = facts["delimiter"].replace("'", "''")
        source = (f"read_csv('{path.as_posix()}', delim='{delim}', header=true, all_varchar=true, encoding='{enc}', "
                  "quote='\"', escape='\"', sample_size=-1)")
    names = [c.column for c in columns]
    # exact distinct counts triple the time of a 10M-row scan: above APPROX_BYTES, HyperLogLog (a few % off)
    approx = path.stat().st_size > APPROX_BYTES
    distinct = "approx_count_distinct({})" if approx else "count(distinct {})"
    exprs = ["count(*)"] + [f'count("{n}")' for n in names] + [distinct.format(f'"{n}"') for n in names]
    ranged = _range_columns(columns)
    for c in ranged:
        text = f'trim(cast("{c.column}" as varchar))'
        if c.role in DATE_ROLES:
            fmt = (c.date_format or "").replace("'", "''")
            value = f"try_strptime({text}, '{fmt}')" if c.date_format else f'try_cast("{c.column}" as timestamp)'
        else:  # the numbers as ingest reads them: currency signs and thousands separators removed
            value = f"try_cast(regexp_replace({text}, '[\\s,¥￥$€£]|RMB|CNY|USD|EUR|GBP|元', '', 'g') as double)"
        exprs += [f"min({value})", f"max({value})"]
    row = con.execute(f"select {', '.join(exprs)} from {source}").fetchone()
    dup = con.execute(f"select count(*) - (select count(*) from (select distinct * from {source})) from {source}").fetchone()[0]
    k = len(names)
    per = {n: {"missing_share": 1 - row[1 + i] / max(row[0], 1), "distinct": int(row[1 + k + i])} for i, n in enumerate(names)}
    for j, c in enumerate(ranged):
        lo, hi = row[1 + 2 * k + 2 * j], row[2 + 2 * k + 2 * j]
        if lo is not None:
            per[c.column]["range"] = (pd.Timestamp(lo), pd.Timestamp(hi)) if c.role in DATE_ROLES else (float(lo), float(hi))
    return int(row[0]), int(dup), "DuckDB (full scan" + (", distinct counts approximate)" if approx else ")"), per


def _stream_count(path: Path, facts: dict, columns: list[ColumnGuess]) -> tuple[int, int, str, dict]:
    """Rows, exact duplicate rows and missing values of a CSV DuckDB cannot decode (GBK, space-
    separated), read in chunks of 500,000 rows so memory stays flat."""
    rows, filled, hashes, ranges = 0, None, [], {}
    reader = pd.read_csv(path, encoding=facts["encoding"], sep=facts["delimiter"], header=0 if facts["has_header"] else None, dtype=str,
                         keep_default_na=False, na_values=[""], skipinitialspace=True, chunksize=500_000)
    for chunk in reader:
        rows += len(chunk)
        counts = chunk.notna().sum().to_numpy()
        filled = counts if filled is None else filled + counts
        hashes.append(pd.util.hash_pandas_object(chunk, index=False).to_numpy())
        if not facts["has_header"]:
            chunk.columns = [c.column for c in columns]
        for column, span in _frame_ranges(chunk, columns).items():
            ranges[column] = _merge_range(ranges.get(column), span)
    allh = np.concatenate(hashes) if hashes else np.zeros(0, np.uint64)
    per = {c.column: {"missing_share": 1 - filled[i] / max(rows, 1), "distinct": c.distinct} for i, c in enumerate(columns)} if rows else {}
    for column, span in ranges.items():
        per[column]["range"] = span
    return rows, int(rows - unique_sorted(allh).size), "pandas (full scan in chunks)", per


def profile_file(path: Path) -> list[FileProfile]:
    """Read one file (every sheet of a workbook) and guess its table and column roles; a file that
    cannot be read raises a one-line TierbookError naming it."""
    try:
        return _profile_file(path)
    except TierbookError:
        raise
    except _read_errors() as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TierbookError(f"{path}: cannot be read ({first}); export it as CSV (UTF-8) or .xlsx and run make init again") from None


def _read_errors() -> tuple[type[Exception], ...]:
    """What the readers raise on a file that is not what its name says (a corrupt workbook, a
    truncated gzip, ragged rows)."""
    import zipfile

    from python_calamine import CalamineError

    return (ValueError, OSError, EOFError, UnicodeDecodeError, pd.errors.ParserError, zipfile.BadZipFile, CalamineError)


def _profile_file(path: Path) -> list[FileProfile]:
    tables = read_tables(path)
    sha = file_sha256(path)
    out = []
    for frame, facts in tables:
        guesses = []
        for column in frame.columns:
            _, guess = guess_column(column, frame[column])
            guesses.append(guess)
        table, why = classify(guesses, frame, path.name)
        if not facts["has_header"]:
            _positional(guesses, frame)
            table, why = classify(guesses, frame, path.name)
            why += "; the file has no header row: roles are by position"
        settle_roles(guesses, table)
        rows, duplicates, counted_by, per = _count(path, facts, frame, guesses)
        for g in guesses:
            if g.column in per:
                g.missing_share, g.distinct = per[g.column]["missing_share"], per[g.column]["distinct"]
                g.value_range = _range_text(per[g.column].get("range"))
        profile = FileProfile(path=path, sha256=sha, format=facts["format"], encoding=facts["encoding"], delimiter=facts["delimiter"],
                              sheet=facts["sheet"], header_row=facts["header_row"], has_header=facts["has_header"], rows=rows, columns=guesses,
                              table=table, table_evidence=why, sample=pd.DataFrame(), duplicates=duplicates, counted_by=counted_by)
        profile.sample = pd.DataFrame({g.column: [mask(v, g.pii or g.role) for v in frame[g.column].head(5)] for g in guesses})
        order = ["order_date", "response_date", "assigned_date", "signup_date", "birth_date"]
        date_col = min((g for g in guesses if g.role in DATE_ROLES), key=lambda g: order.index(g.role), default=None)
        span = per.get(date_col.column, {}).get("range") if date_col is not None else None
        if span is not None:
            profile.date_span = (f"{span[0]:%Y-%m-%d}", f"{span[1]:%Y-%m-%d}")
        amount = next((g for g in guesses if g.role in ("amount", "unit_price")), None)
        profile.currency = CURRENCY_SYMBOLS.get(getattr(amount, "_facts", {}).get("money")) if amount else None
        if table == "transactions":
            profile.returns = _returns(profile, frame)
            profile.channel = _channel(path)
        if rows > len(frame):
            profile.notes.append(f"roles guessed on the first {len(frame):,} of {rows:,} rows")
        out.append(profile)
    return out


def _range_text(span: tuple | None) -> str:
    if span is None:
        return ""
    if isinstance(span[0], pd.Timestamp):
        return f"{span[0]:%Y-%m-%d} to {span[1]:%Y-%m-%d}"
    return f"{span[0]:,.10g} to {span[1]:,.10g}"


def _positional(guesses: list[ColumnGuess], frame: pd.DataFrame) -> None:
    """Files without a header row (CDNOW's master file): an id-like first column with a date next
    to it makes a transactions table; numbers after it are quantity then amount."""
    if len(guesses) < 3:
        return
    f0 = getattr(guesses[0], "_facts", {})
    rate, fmt = date_parse(frame[guesses[1].column])
    if f0.get("numeric", 0) > 0.99 and rate >= 0.95:
        guesses[0].role, guesses[0].confidence, guesses[0].evidence = "customer_id", "medium", "position 1: id-like numbers (no header)"
        guesses[1].role, guesses[1].confidence, guesses[1].date_format = "order_date", "medium", fmt
        guesses[1].evidence = f"position 2: {rate:.1%} parse as {fmt} (no header)"
        numeric = [g for g in guesses[2:] if getattr(g, "_facts", {}).get("numeric", 0) > 0.99]
        if len(numeric) >= 2 and numeric[0]._facts["integer"]:
            numeric[0].role, numeric[0].confidence, numeric[0].evidence = "quantity", "low", "integers after the date (no header)"
            numeric[1].role, numeric[1].confidence, numeric[1].evidence = "amount", "medium", "decimals after the quantity (no header)"
        elif numeric:
            numeric[-1].role, numeric[-1].confidence, numeric[-1].evidence = "amount", "medium", "numbers after the date (no header)"


def profile_folder(folder: Path) -> list[FileProfile]:
    """Every table in the folder; a file that cannot be read is reported as unknown (the others are
    still profiled), and only a folder where nothing can be read stops init."""
    files, profiles, errors = find_files(folder), [], []
    for path in files:
        try:
            profiles.extend(profile_file(path))
        except TierbookError as exc:
            errors.append(str(exc))
            try:
                sha = file_sha256(path)
            except OSError:
                sha = ""
            profiles.append(FileProfile(path=path, sha256=sha, format=path.suffix.lstrip(".").lower() or "file", encoding=None, delimiter=None,
                                        sheet=None, header_row=0, has_header=False, rows=0, columns=[], table="unknown",
                                        table_evidence=str(exc).split(": ", 1)[-1], sample=pd.DataFrame()))
    if len(errors) == len(files):
        raise TierbookError(errors[0] if len(files) == 1 else f"no file in {folder} can be read; the first: {errors[0]}")
    return profiles


# --------------------------------------------------------------------------- the draft


def _q(value) -> str:
    """A YAML scalar: strings double-quoted (JSON strings are valid YAML), numbers as they are."""
    return json.dumps(value, ensure_ascii=False) if isinstance(value, str) else json.dumps(value)


def _source_name(profile: FileProfile, used: set[str]) -> str:
    base = re.sub(r"[^a-z0-9_-]+", "_", profile.path.name.lower().split(".")[0]).strip("_") or "source"
    if profile.sheet is not None:
        sheet = re.sub(r"[^a-z0-9_-]+", "_", profile.sheet.lower()).strip("_")
        base = f"{base}_{sheet}" if sheet else base
    name, i = base, 2
    while name in used:
        name, i = f"{base}_{i}", i + 1
    used.add(name)
    return name


def _source_block(p: FileProfile, name: str, folder: Path, indent: str) -> list[str]:
    lines = [f"{indent}name: {_q(name)}", f"{indent}path: {_q(str(p.path.relative_to(folder)))}"
             + f"   # {p.format}{', ' + p.encoding if p.encoding else ''}, {p.rows:,} rows, sha256 {p.sha256[:12]}…"]
    if p.sheet is not None:
        lines.append(f"{indent}sheet: {_q(p.sheet)}")
    if p.header_row:
        lines.append(f"{indent}header_row: {p.header_row}   # rows above it are titles")
    if p.delimiter not in (None, ","):
        lines.append(f"{indent}delimiter: {_q(p.delimiter)}" + ("   # columns separated by spaces" if p.delimiter == r"\s+" else ""))
    mapped = [c for c in p.columns if c.role and c.role != "outcome"]
    lines.append(f"{indent}columns:")
    for c in mapped:
        pii = " (PII: dropped at ingest, never shown)" if c.role in PII else ""
        lines.append(f"{indent}  {_q(c.column)}: {c.role}   # {c.confidence}: {c.evidence}{pii}")
    dates = [c for c in mapped if c.role in DATE_ROLES and c.date_format]
    if dates:
        lines.append(f"{indent}date_format: {_q(dates[0].date_format)}   # {dates[0].column}: {dates[0].evidence}")
    if p.table == "transactions":
        if p.channel:
            lines.append(f"{indent}channel: {_q(p.channel)}   # from the file name; check it")
        else:
            lines.append(f"{indent}# channel: TODO a label for every row of this file (e.g. store, online); none could be read from the name")
        if p.returns:
            lines.append(f"{indent}returns:")
            for rule in p.returns:
                body = {k: v for k, v in rule.items() if k != "why"}
                inner = ", ".join(f"{k}: {_q(v) if not isinstance(v, list) else '[' + ', '.join(_q(x) for x in v) + ']'}"
                                  for k, v in body.items())
                lines.append(f"{indent}  - {{{inner}}}   # {rule['why']}")
        else:
            lines.append(f"{indent}# returns: TODO no return or cancellation marker found; add a rule if the file has returns")
    outcomes = [c for c in p.columns if c.role == "outcome"]
    if outcomes:
        lines.append(f"{indent}outcomes:")
        for c in outcomes:
            lines.append(f"{indent}  {_q(c.column)}: {_q(normalise(c.column) if re.fullmatch(r'[a-z0-9_]+', c.column) is None else c.column)}   # {c.evidence}")
    for c in p.columns:
        if c.role is None and c.pii:
            lines.append(f"{indent}# {c.column}: personal data ({c.pii}; {c.evidence}): not mapped, a {p.table} source does not read it")
    unknown = [c for c in p.columns if c.role is None and not c.pii]
    for c in unknown:
        lines.append(f"{indent}# {c.column}: unknown ({c.evidence}); map it under columns if it is one of the contract's columns")
    required = {"transactions": ["customer_id", "order_date"], "customers": ["customer_id"], "survey": ["response_date"],
                "experiment": ["customer_id", "variant"]}[p.table]
    for role in required:
        if not p.role_of(role):
            lines.append(f"{indent}# TODO: no column was recognised as {role} (required); map one under columns")
    return lines


def _paths_block(folder: Path, client: str, project_root: Path | None) -> list[str]:
    """``paths:`` of the draft: relative to the project when the exports are inside it; else the
    folder is also declared as ``data_root``, the explicit permission to read outside the project."""
    if project_root is not None:
        root = project_root.resolve()
        if folder == root or root in folder.parents:
            relative = folder.relative_to(root).as_posix()
            if relative == f"data/{client}":
                return ["paths:", f"  data: {_q('data/{client}')}   # the default"]
            return ["paths:", f"  data: {_q(relative)}"]
    return ["paths:", f"  data: {_q(str(folder))}",
            f"  data_root: {_q(str(folder))}   # outside the project: reading there is allowed explicitly"]


def draft_params(profiles: list[FileProfile], client: str, folder: Path, page: str | None = None,
                 project_root: Path | None = None) -> str:
    """The draft ``params/<client>.yaml``: every guess commented with its evidence and confidence."""
    folder = folder.resolve()
    today = dt.date.today().isoformat()
    used: set[str] = set()
    currency = next((p.currency for p in profiles if p.table == "transactions" and p.currency), None)
    lines = [
        f"# Draft params for client {client!r}, written by `make init` on {today} from {folder} ({len(profiles)} table(s)).",
        "# Every mapping is a guess with its evidence and confidence: review them, resolve what is marked to do, then",
        f"#   make check CLIENT={client}  and  make report CLIENT={client}",
        "# Every key and its default is documented in params/default.yaml." + (f" Data profile: {page}" if page else ""),
        f"title: {_q(client)}",
        f"currency: {_q(currency)}   # from the currency symbol of the amounts" if currency else
        "# currency: TODO the currency code of the amounts (default CNY); none could be read from the values",
        *_paths_block(folder, client, project_root),
        "sources:",
    ]
    tx = [p for p in profiles if p.table == "transactions"]
    if tx:
        lines.append("  transactions:   # listed order = priority when the same order is in two files")
        for p in tx:
            block = _source_block(p, _source_name(p, used), folder, "      ")
            if not p.has_header:  # ingest needs a header: the block is a commented proposal
                lines.append(f"    # TODO: {p.label} has no header row; add one ({', '.join(c.role or '?' for c in p.columns)}) and uncomment:")
                lines.append("    # - " + block[0].strip())
                lines.extend("    #" + line[4:] for line in block[1:])
                continue
            lines.append("    - " + block[0].strip())
            lines.extend(block[1:])
    else:
        lines.append("  transactions: []   # TODO: no file looks like transactions (customer id, date, amount); the report needs one")
    for table in ("customers", "survey", "experiment"):
        found = [p for p in profiles if p.table == table]
        if not found:
            continue
        lines.append(f"  {table}:")
        lines.extend(_source_block(found[0], _source_name(found[0], used), folder, "    "))
        for extra in found[1:]:
            lines.append(f"  # TODO: {extra.label} also looks like a {table} table; only one {table} source is read")
    for p in profiles:
        if p.table == "unknown":
            cols = ", ".join(p.columns[i].column for i in range(min(8, len(p.columns))))
            lines.append(f"# TODO: {p.label} is not mapped: {p.table_evidence}" + (f" (columns: {cols})" if cols else "")
                         + ". Map it by hand or leave it out.")
    return "\n".join(lines) + "\n"


def run_init(client: str, data: Path, project_root: Path, force: bool = False) -> tuple[Path, Path, list[FileProfile]]:
    """Profile every file in ``data``, write ``params/<client>.yaml`` and the profile page; returns
    (params path, page path, profiles). Inputs are only read; their checksums are verified after."""
    from .onboard_page import write_profile_page
    from .params import CLIENT_NAME

    if not CLIENT_NAME.match(client):
        raise TierbookError(f"client name {client!r} must match [a-z0-9_-]+ (it names params/<client>.yaml and reports/<client>/)")
    target = project_root / "params" / f"{client}.yaml"
    if target.exists() and not force:
        raise TierbookError(f"{target} exists; init never overwrites a client's params: move it away, or add FORCE=1 (make init ... FORCE=1)")
    data = Path(data).expanduser().resolve()
    profiles = profile_folder(data)
    page = project_root / "reports" / client / "init" / "profile.html"
    text = draft_params(profiles, client, data, str(page.relative_to(project_root)), project_root)
    changed = [p.path for p in profiles if p.sha256 and file_sha256(p.path) != p.sha256]
    if changed:
        raise TierbookError(f"{changed[0]} changed while it was being read; run make init again when the export is complete")
    write_profile_page(profiles, client, data, page)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".yaml.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(target)
    return target, page, profiles
