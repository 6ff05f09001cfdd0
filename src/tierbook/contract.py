"""The data contract: the tables every client's sources are mapped onto, and how a value of each
kind of column is read from the text of an export.

Each source in params maps its own column names onto these names (``客户ID: customer_id``).
A column is ``required``, ``optional`` or ``pii`` (read for matching only, dropped before any
clean table is written, never shown in a report). ``kind`` picks the parser below
(``parse_ids``, ``parse_text``, ``parse_numbers``, ``parse_datetimes``), which
``tierbook.ingest.map_source`` applies; a value that does not parse becomes missing, and the
cleaning stage rejects its row with the text in the detail.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass

from ._lazy import Imported

# imported when a value is first parsed: params reads the tables below in the report's runner, which imports neither
np = Imported("numpy", globals(), "np")
pd = Imported("pandas", globals(), "pd")


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # id | text | datetime | date | number | integer | flag
    role: str  # required | optional | pii
    doc: str


def _cols(*columns: Column) -> dict[str, Column]:
    return {c.name: c for c in columns}


TRANSACTIONS = _cols(
    Column("customer_id", "id", "required", "customer / member id; read as text (zero-padded ids stay intact)"),
    Column("order_date", "datetime", "required", "date and time of the order or receipt"),
    Column("amount", "number", "optional", "line or order amount; required unless quantity and unit_price are given"),
    Column("quantity", "number", "optional", "units; amount = quantity x unit_price when no amount is mapped"),
    Column("unit_price", "number", "optional", "price per unit"),
    Column("order_id", "id", "optional", "order / receipt / invoice id; lines sharing it form one order (else each row is an order)"),
    Column("original_order_id", "id", "optional", "for returns: the order being returned (matched first when present)"),
    Column("order_status", "text", "optional", "status or document type (e.g. 销售 / 退货, paid / refunded), used by return rules"),
    Column("product_id", "id", "optional", "SKU / stock code; returns are matched to an order with the same product when present"),
    Column("channel", "text", "optional", "channel / platform / store type; else the source's `channel` param"),
    Column("store", "text", "optional", "store or shop name"),
    Column("currency", "text", "optional", "currency code per row; else the source's or the client's `currency`"),
    Column("category", "text", "optional", "product category of the line (favourite category, category mix by tier)"),
    Column("discount", "number", "optional", "discount or coupon value on the line (> 0 = bought on discount)"),
    Column("cost", "number", "optional", "cost of goods of the line (profit = amount - cost)"),
    Column("margin", "number", "optional", "gross margin of the line in money (cost = amount - margin); map cost or margin"),
    Column("region", "text", "optional", "customer's region / country as recorded on the transaction (used when the customers table has none)"),
)

CUSTOMERS = _cols(
    Column("customer_id", "id", "required", "customer / member id, the key the transactions use"),
    Column("signup_date", "date", "optional", "membership signup date"),
    Column("region", "text", "optional", "region / province"),
    Column("city", "text", "optional", "city"),
    Column("gender", "text", "optional", "gender"),
    Column("birth_date", "date", "optional", "birth date (age bands are derived, the date is not shown)"),
    Column("signup_channel", "text", "optional", "channel the member signed up through"),
    Column("member_tier", "text", "optional", "the client's own current tier / membership level"),
    Column("age", "number", "optional", "age in years (banded by profile.bands.age)"),
    Column("industry", "text", "optional", "industry (B2B clients)"),
    Column("company_size", "number", "optional", "employees (B2B clients; banded by profile.bands.company_size)"),
    Column("name", "text", "pii", "personal name: dropped at ingest"),
    Column("phone", "text", "pii", "phone number: dropped at ingest"),
    Column("email", "text", "pii", "e-mail address: dropped at ingest"),
    Column("address", "text", "pii", "postal address: dropped at ingest"),
    Column("id_number", "text", "pii", "national id number: dropped at ingest"),
)

SURVEY = _cols(
    Column("customer_id", "id", "optional", "respondent's customer id (anonymous answers still count overall)"),
    Column("response_date", "date", "required", "date of the answer"),
    Column("nps", "integer", "optional", "likelihood to recommend, 0-10"),
    Column("csat", "integer", "optional", "satisfaction, 1-5"),
    Column("comment", "text", "optional", "free-text comment"),
    Column("channel", "text", "optional", "channel of the survey or of the purchase"),
    # item scores (any one scale for all, e.g. 1-5): the satisfaction section regresses the 0-10 score on those mapped
    Column("item_product", "number", "optional", "item score: product / quality"),
    Column("item_service", "number", "optional", "item score: service"),
    Column("item_delivery", "number", "optional", "item score: delivery / logistics"),
    Column("item_price", "number", "optional", "item score: price / value for money"),
    Column("item_staff", "number", "optional", "item score: staff"),
    Column("item_experience", "number", "optional", "item score: store or app experience"),
)

EXPERIMENT = _cols(
    Column("customer_id", "id", "required", "customer id"),
    Column("variant", "text", "required", "arm: the control and one or more treatments"),
    Column("assigned_date", "date", "optional", "date of assignment"),
    Column("stratum", "text", "optional", "stratum / tier at assignment"),
    Column("cost", "number", "optional", "cost per treated customer"),
    Column("pre_value", "number", "optional", "pre-period spend (or another measure taken before assignment): the CUPED covariate"),
)

TABLES = {
    "transactions": TRANSACTIONS,
    "customers": CUSTOMERS,
    "survey": SURVEY,
    "experiment": EXPERIMENT,
}


# --------------------------------------------------------------------------- reading a value of each kind


def parse_ids(values: pd.Series) -> pd.Series:
    """Ids as stripped strings; Excel's 12345.0 becomes '12345'; blanks become missing."""
    if pd.api.types.is_integer_dtype(values):
        return values.astype("Int64").astype("string")
    if values.dtype == object or isinstance(values.dtype, pd.StringDtype):
        if pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):  # a CSV column: text only, vectorised
            return _stripped(values)

    def one(v):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return None
        if isinstance(v, float) and v.is_integer():
            return str(int(v))
        text = str(v).strip()
        return text or None

    return pd.Series([one(v) for v in values], index=values.index, dtype="string")


def parse_text(values: pd.Series) -> pd.Series:
    return _stripped(values)


def _stripped(values: pd.Series) -> pd.Series:
    """Text stripped of surrounding whitespace, blank values missing. A column of Arrow strings with nothing to strip and
    no blank value comes back as it is, its buffers shared rather than copied: a CSV export's ids and texts mostly are
    so, and their copies sat beside the file's own columns until a source was mapped: mapping the 6.4M-line POS export of
    1.4M customers peaked at 2.73 GiB with them, 2.22 GiB without (2026-12-04)."""
    text = values.astype("string")
    stripped = text.str.strip()
    if not bool((stripped != text).any()):
        stripped = text
    blank = (stripped == "").fillna(False)
    return stripped.mask(blank) if blank.any() else stripped


# Amounts as exports write them: ¥1,234.50, 1.234,50 €, (1,234.50), RMB 1 234, 1'234.50, 1234.50-.
CURRENCY_MARKS = r"(?i:rmb|cny|usd|eur|gbp|hkd|jpy|us\$|hk\$)|[¥$€£₩元圆]"
NUMBER_SPACES = "[\\s\u00a0\u2009\u202f'’]"  # thousands written with (narrow, no-break) spaces or apostrophes (the characters themselves: RE2 has no \\u)
PLAIN_NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
DOT_DECIMAL = r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?|" + PLAIN_NUMBER
COMMA_DECIMAL = r"[+-]?\d{1,3}(?:\.\d{3})+(?:,\d+)?|[+-]?\d+(?:,\d+)?|[+-]?,\d+"
# a value that shows the decimal mark: '1.234,50', '12,5', '1.234.567' say comma; '1,234.50', '12.5', '1,234,567' say point
SAYS_COMMA = r"\.\d{3},\d+$|\d,(?:\d{1,2}|\d{4,})$|\d\.\d{3}\.\d{3}"
SAYS_POINT = r",\d{3}\.\d+$|\d\.(?:\d{1,2}|\d{4,})$|\d,\d{3},\d{3}|\d[eE][+-]?\d"


def parse_numbers(values: pd.Series) -> pd.Series:
    """Numbers from text such as '¥1,234.50', '1.234,50 €', '(1,234.50)', 'RMB 1 234'; unparseable -> NaN.

    The decimal mark is decided per column from the values that show it (see SAYS_COMMA and
    SAYS_POINT; the point when none does, as in '1,234'). A value that does not fit the column's
    convention is unparseable rather than guessed: '1.234,50' in a column of '1,234.50' would
    otherwise become 1.2345. Non-finite values (inf, 1e400) are unparseable too."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        numbers = values.astype(float)
        return numbers.where(np.isfinite(numbers))
    given = pd.Series(np.nan, index=values.index)
    if values.dtype == object and pd.api.types.infer_dtype(values, skipna=True) not in ("string", "empty"):
        # Excel and Parquet give numbers as numbers: never re-read them as text (a CSV column is all text: skipped)
        is_number = values.map(lambda v: isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool | np.bool_))
        given = values.where(is_number).astype(float)
        values = values.where(~is_number)
    # Arrow strings: the regular expressions below run in pyarrow (RE2, C++), 2.5x faster than Python's re over
    # 265k e-commerce amounts such as '¥1,234.50' (7.4 s -> 2.9 s, identical results; 2026-12-02). Each distinct text is
    # parsed once (the column's decimal mark is still decided by every value, each text counted as often as it comes):
    # the 1M-customer demo's 2.7M e-commerce amounts are 182k texts, 4.8 s (3.9-5.1) -> 0.5-0.9 s (medians of 3 runs
    # each; the same numbers on them and on formatted, comma-decimal, mixed and empty columns, 2026-12-03)
    distinct, codes, present = _distinct_texts(values.astype("string[pyarrow]").str.strip())
    counts = np.bincount(codes[present], minlength=len(distinct))
    if distinct.str.contains(r"[^\x00-\x7f]", regex=True, na=False).any():
        distinct = distinct.str.normalize("NFKC").str.replace("\u2212", "-", regex=False)  # full-width digits and marks; the minus sign
    comma = _decimal_comma(distinct, counts)
    numbers = _plain_numbers(distinct, r"[+-]?\d+" if comma else PLAIN_NUMBER)
    rest = distinct.notna() & numbers.isna()
    if rest.any():
        numbers[rest] = _parse_formatted(distinct[rest], comma)
    parsed = np.where(present, numbers.to_numpy(dtype=float)[codes] if len(distinct) else np.nan, np.nan)
    parsed = pd.Series(parsed, index=values.index).where(lambda p: p.notna(), given)
    return parsed.where(np.isfinite(parsed))


def _distinct_texts(text: pd.Series) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """The distinct values of an Arrow text Series (Arrow's dictionary encoding), each row's position among them (0
    where the row is missing) and which rows are not missing."""
    import pyarrow as pa

    arrow = pa.array(text.array, type=pa.string())
    if isinstance(arrow, pa.ChunkedArray):  # pyarrow gives an empty one as a chunked array of no chunks
        arrow = pa.concat_arrays(arrow.chunks) if arrow.num_chunks else pa.array([], type=pa.string())
    encoded = arrow.dictionary_encode()
    codes = encoded.indices.to_numpy(zero_copy_only=False)  # float with NaN where missing, else integers
    present = ~np.isnan(codes) if codes.dtype.kind == "f" else np.ones(len(codes), dtype=bool)
    return pd.Series(pd.arrays.ArrowStringArray(encoded.dictionary)), np.where(present, codes, 0).astype(np.int64), present


def nfkc(text: pd.Series) -> pd.Series:
    """``text.str.normalize("NFKC")``, made once per distinct value of Arrow strings (the dates' normalisation; the
    amounts' is of their distinct texts already, ``parse_numbers``): Python's unicodedata runs per value, and the
    1M-customer demo's 2.7M e-commerce amounts such as '¥1,234.50' took 1.96 s, their 182k distinct values 0.84 s with
    Arrow's dictionary encoding and take (the same values, 2026-12-03)."""
    if not (isinstance(text.dtype, pd.StringDtype) and text.dtype.storage == "pyarrow"):
        return text.str.normalize("NFKC")
    distinct, codes, present = _distinct_texts(text)
    normalised = distinct.str.normalize("NFKC").array.take(codes) if len(distinct) else text.array.copy()
    out = pd.Series(normalised, index=text.index, name=text.name)
    return out.where(present)


def _plain_numbers(text: pd.Series, pattern: str) -> pd.Series:
    """The values that are plain numbers (``pattern``, e.g. PLAIN_NUMBER: 12, -3.5, 1e5) as floats, the others NaN.

    Arrow matches and casts them in C++: pandas' to_numeric went through a Python object per value, 33 s for
    the 1M-customer client's 22M amounts, quantities and prices (2026-12-02), with identical results on them.
    Arrow reads a value of more than 17 digits as the double nearest it, where pandas' parser could be one unit
    in the last place off ('3.14159265358979323846'); a zero is +0.0 (to_numeric gave '-0' as 0 in a column of
    whole numbers and -0.0 in one with decimals)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    values = pa.array(text.array, type=pa.string())
    plain = pc.match_substring_regex(values, f"^(?:{pattern})$")
    numbers = pc.cast(pc.if_else(plain, values, pa.scalar(None, pa.string())), pa.float64()).to_numpy(zero_copy_only=False)
    return pd.Series(numbers + 0.0, index=text.index)  # + 0.0: -0.0 becomes 0.0


def _decimal_comma(text: pd.Series, counts: np.ndarray | None = None) -> bool:
    """Whether the column writes decimals with a comma: more of its values show a comma than a point (``counts``: how
    many values each text stands for, when ``text`` holds a column's distinct texts)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    values = pa.array(text.array, type=pa.string())
    has_comma = pc.fill_null(pc.match_substring(values, ","), False)
    several_points = pc.fill_null(pc.greater(pc.count_substring(values, "."), 1), False)  # not a regular expression: 10x faster
    if not pc.any(pc.or_(has_comma, several_points)).as_py():
        return False
    core = (text.str.replace(CURRENCY_MARKS, "", regex=True).str.replace(NUMBER_SPACES, "", regex=True)
            .str.replace(r"[)\-]+$", "", regex=True))
    weights = np.ones(len(core), dtype=np.int64) if counts is None else counts
    says_comma = core.str.contains(SAYS_COMMA, regex=True).fillna(False).to_numpy(dtype=bool)
    says_point = core.str.contains(SAYS_POINT, regex=True).fillna(False).to_numpy(dtype=bool)
    return bool(weights[says_comma].sum() > weights[says_point].sum())


def _parse_formatted(text: pd.Series, comma: bool) -> pd.Series:
    paren = text.str.fullmatch(r"\(.*\)").fillna(False).astype(bool)
    # the parentheses sliced off the values that have them: a replacement with a group (^\((.*)\)$ -> \1) took 2.5 s
    # for 265k amounts such as '¥179.25' (2026-12-02)
    core = (text.mask(paren, text.str.slice(1, -1)).str.replace(CURRENCY_MARKS, "", regex=True)
            .str.replace(NUMBER_SPACES, "", regex=True))
    negative = paren | core.str.startswith("-").fillna(False).astype(bool) | core.str.endswith("-").fillna(False).astype(bool)
    core = core.str.replace(r"^[-+]|-$", "", regex=True)
    if comma:
        valid = core.str.fullmatch(COMMA_DECIMAL).fillna(False).astype(bool)
        core = core.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
    else:
        valid = core.str.fullmatch(DOT_DECIMAL).fillna(False).astype(bool)
        core = core.str.replace(",", "", regex=False)
    numbers = _plain_numbers(core.where(valid), PLAIN_NUMBER)  # what is valid is a plain number once its marks are gone
    return numbers.where(~negative, -numbers.abs())


# Dates as exports write them, besides ISO: 2024年1月5日, 2024/1/5 下午 2:30:00, 05/01/2024, 5.1.2024.
CHINESE_DATE = r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*[日号]?"
CHINESE_HALF_DAY = r"(上午|下午)\s*(\d{1,2}:\d{2}(?::\d{2})?)"
DAY_MONTH_YEAR = r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{2}|\d{4})\b"


# ingest.read_all parses sources in threads
_WARNINGS = threading.Lock()


class DateOrderConflict(ValueError):
    """A column with dates that are only valid day-first and others only valid month-first."""

    def __init__(self, day_first: pd.Series, month_first: pd.Series):
        self.day_first, self.month_first = day_first, month_first
        super().__init__("the column mixes day-first and month-first dates")


def _normalise_dates(text: pd.Series) -> pd.Series:
    if not text.str.contains(r"[^\x00-\x7f]", regex=True, na=False).any():
        return text
    text = nfkc(text).str.replace(CHINESE_DATE, r"\1-\2-\3", regex=True)
    text = text.str.replace(CHINESE_HALF_DAY, r"\2 \1", regex=True)
    return text.str.replace("上午", "AM", regex=False).str.replace("下午", "PM", regex=False).str.strip()


def day_first_order(text: pd.Series, default: bool) -> bool:
    """Whether the column's dd/mm/yyyy-like dates put the day first: the values that can only be
    read one way decide (13/01/2024 is day-first, 01/13/2024 month-first); ``default`` (the
    source's ``dayfirst``) when none can. Raises DateOrderConflict when both kinds are there."""
    parts = text.str.extract(DAY_MONTH_YEAR).dropna()
    if parts.empty:
        return default
    first, second = parts[0].astype(int), parts[1].astype(int)
    day_first, month_first = (first > 12) & (second <= 12), (second > 12) & (first <= 12)
    if day_first.any() and month_first.any():
        raise DateOrderConflict(text[day_first[day_first].index], text[month_first[month_first].index])
    return bool(day_first.any()) or (default and not month_first.any())


def parse_datetimes(values: pd.Series, date_format: str | None, dayfirst: bool) -> pd.Series:
    """Datetimes from the column's values: with ``date_format`` exactly that format (other values
    are unparseable); else ISO 8601 (also 2024/1/5, 2024.01.05, 20240105, 2024年1月5日), then the
    format of the first other value, then any format, with the column's day order
    (``day_first_order``) for dd/mm/yyyy-like values. Unparseable -> NaT."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.dt.tz_localize(None) if values.dt.tz is not None else values
    present = values.notna()
    if not present.any():
        return pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
    # a workbook's date cells are dates whatever ``date_format`` says (it describes dates written as text); fastexcel gives
    # them as datetime64 (above), pandas' reader as Timestamps (workbook.read_sheet)
    head = [v for v in values.head(100) if v is not None]
    if head and all(isinstance(v, pd.Timestamp | np.datetime64) for v in head):
        return pd.to_datetime(values, errors="coerce")
    if values.dtype == object and pd.api.types.infer_dtype(values, skipna=True) == "datetime":
        # a workbook's date cells with some empty (NaN) among the first: the same instants their text would give, without
        # writing 2M dates out as text to read them back (6 s for the 1M-member workbook, 2026-12-02)
        return pd.to_datetime(values, errors="coerce")
    text = values.astype("string").str.strip()
    if date_format:
        return pd.to_datetime(text, format=date_format, errors="coerce")
    text = _normalise_dates(text)
    parsed = pd.to_datetime(text, format="ISO8601", errors="coerce")
    rest = text.notna() & parsed.isna()
    if rest.any():
        day_first = day_first_order(text[rest], dayfirst)
        dmy = rest & text.str.match(DAY_MONTH_YEAR, na=False)
        for mask, order in ((dmy, day_first), (rest & ~dmy, False)):  # dayfirst=True would also read 2024/1/5 as 1 May
            if not mask.any():
                continue
            with _WARNINGS, warnings.catch_warnings():  # catch_warnings swaps process-wide filters: one thread at a time
                warnings.simplefilter("ignore")  # "Parsing dates in %d/%m/%Y format when dayfirst=False": the column decided
                guess = pd.tseries.api.guess_datetime_format(str(text[mask].iloc[0]), dayfirst=order)
                one = pd.to_datetime(text[mask], format=guess, errors="coerce") if guess else pd.Series(pd.NaT, index=text[mask].index)
                todo = one.isna()
                if todo.any():
                    one[todo] = pd.to_datetime(text[mask][todo], format="mixed", dayfirst=order, errors="coerce")
            parsed[mask] = one
    return parsed
