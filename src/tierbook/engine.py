"""The transaction engine: the per-customer summary, the acquisition cohorts and the monthly
figures as Ibis expressions, run by DuckDB in-process (the default) or by PySpark (``engine: pyspark``).

Why Ibis: one expression, written once in Python, compiles to DuckDB's SQL and to Spark SQL, so a
client whose orders sit in a Spark cluster runs the same template; DuckDB reads Parquet and CSV
files (or a glob of them) directly and streams them, so memory does not grow with the file.
Everything after the per-customer summary stays in pandas.

    con = connect(params.engine)                       # DuckDB, or a SparkSession built from params
    orders = orders_table(con, run_dir / "data" / "orders.parquet")   # or "exports/orders-*.parquet"
    summary = execute_summary(orders, as_of, occasion="day", time_unit="W")   # == summary.customer_summary
    now, before = execute_summaries(orders, [as_of, base_date], window_days=365)  # several dates, one query

``customer_summary`` returns the expression; ``summary_frame`` turns its executed result into the
table ``tierbook.summary.customer_summary`` returns for the same orders (columns ``COLUMNS``, their
dtypes, customers sorted by id, ``attrs``), equal to it exactly: tests/test_engine.py checks this on
a demo run for DuckDB and, row for row, for PySpark in local mode.

Two choices make the numbers engine-independent:

* Days are integers (days since 1970-01-01), so ``as_of`` compares whole days as the pandas
  summary does, whatever the engine's timestamp type or time zone.
* Amounts are summed as integers: each order's ``net_amount`` becomes int64 ten-thousandths of the
  currency unit (``summary.to_amount_units``: floor(x * 10,000 + 0.5)) and each sum is divided once.
  Floating sums depend on the order of the additions, which differs between DuckDB's, Spark's and
  numpy's aggregations; integer sums do not. numpy's summary does the same, so all three agree bit
  for bit, and a sum is the double nearest the exact decimal sum of the orders.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from .errors import TierbookError
from .summary import AMOUNT_SCALE, COLUMNS, DAYS_PER_UNIT, NS_PER_DAY

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from .params import Engine

# Spark settings the engine needs (params' engine.spark.config may override them): whole days are
# UTC days, as in pandas; pandas writes Parquet timestamps in nanoseconds, which Spark 4.0 reads only
# as a long (otherwise "Illegal Parquet type: INT64 (TIMESTAMP(NANOS,false))").
SPARK_DEFAULTS = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.legacy.parquet.nanosAsLong": "true",
}
# for a session the engine starts: no console progress bars in the sections' output
SPARK_START_DEFAULTS = {"spark.ui.showConsoleProgress": "false"}


# --------------------------------------------------------------------------- connection and input


def _engine_params(engine: Engine | dict | None) -> Engine:
    from .params import Engine

    if engine is None:
        return Engine()
    return engine if isinstance(engine, Engine) else Engine.model_validate(engine)


def connect(engine: Engine | dict | None = None):
    """An Ibis backend for params' ``engine`` section: DuckDB in this process (default) or PySpark
    (a SparkSession from ``engine.spark``: ``master``, or Spark Connect ``remote``, ``app_name``
    and ``config``). pyspark is imported only here, and only for ``kind: pyspark``."""
    import ibis

    engine = _engine_params(engine)
    if engine.kind == "duckdb":
        settings = {key: value for key, value in engine.duckdb.model_dump().items() if value is not None}
        con = ibis.duckdb.connect(":memory:", **settings)
        try:  # in a script DuckDB draws a progress bar on stdout for queries over 2 s (into the sections' output)
            con.raw_sql("SET enable_progress_bar = false")
        except Exception as error:  # in a Jupyter kernel it draws none without ipywidgets and refuses the setting
            if "ipywidgets" not in str(error):
                raise
        return con
    spark = engine.spark
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise TierbookError("engine.kind is pyspark but pyspark is not installed; install it with "
                            "`pip install 'tierbook[spark]'` (or set engine.kind: duckdb)") from None
    if spark.remote is None and shutil.which("java") is None and not _java_home():
        raise TierbookError(f"engine.kind is pyspark with master {spark.master!r}, but no Java is on PATH (Spark 4.0 needs "
                            "Java 17 or 21); install a JDK, or set engine.spark.remote to a Spark Connect server")
    builder = SparkSession.builder.remote(spark.remote) if spark.remote else SparkSession.builder.master(spark.master)
    builder = builder.appName(spark.app_name)
    settings = {**SPARK_START_DEFAULTS, **SPARK_DEFAULTS, **{key: _spark_value(value) for key, value in spark.config.items()}}
    for key, value in settings.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    for key in SPARK_DEFAULTS:  # also on a session that existed before (getOrCreate keeps its static settings)
        session.conf.set(key, settings[key])
    return ibis.pyspark.connect(session)


def _java_home() -> bool:
    home = os.environ.get("JAVA_HOME")
    return bool(home) and (Path(home) / "bin" / "java").exists()


def _spark_value(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


_CONNECTIONS: dict[tuple[str, int], Any] = {}  # connection()'s, by settings and process id


def connection(engine: Engine | dict | None = None):
    """``connect(engine)``, made once per process and settings (a section asks for several summaries) until
    ``release``. Per process id: a section forked from a process that had a connection (run.executor: fork) makes
    its own, since a DuckDB connection's threads and locks do not survive a fork; the inherited one is
    left untouched (closing it in the child could wait on a lock held by a thread that is gone)."""
    key = (_engine_params(engine).model_dump_json(), os.getpid())
    if key not in _CONNECTIONS:
        _CONNECTIONS[key] = connect(engine)
    return _CONNECTIONS[key]


def release(engine: Engine | dict | None = None) -> None:
    """Close this process's DuckDB connection for ``engine``, if it has one (the next ``connection`` makes a new
    one): DuckDB's allocator keeps what a query freed until its database is closed. After the rfm section's summaries
    at 1.4M customers (7M orders) the process held 1.65 GiB, 1.21 GiB once glibc and Arrow gave theirs back, 0.59 GiB
    with the connection closed too (2026-12-05). A Spark session is kept (starting one takes seconds)."""
    settings = _engine_params(engine)
    if settings.kind != "duckdb":
        return
    con = _CONNECTIONS.pop((settings.model_dump_json(), os.getpid()), None)
    if con is not None:
        con.disconnect()


def orders_table(con, path: str | Path, *, format: Literal["auto", "parquet", "csv"] = "auto",
                 columns: dict[str, str] | None = None) -> ir.Table:
    """The orders as an Ibis table read by the backend itself (no pandas): a run's
    ``data/orders.parquet``, or for a large client any Parquet or CSV file or glob of files
    (``exports/2026-*.parquet``) whose columns are the clean orders' (``customer_id``,
    ``order_date``, ``net_amount``; ``source``, ``order_id`` for ``occasion="order"``; ``channel``
    for ``monthly``) or are renamed to them with ``columns`` (file column -> contract name).

    CSV is read as text and cast (ids stay text: ``00001`` keeps its zeros); its dates must be ISO
    (``2026-01-31`` or ``2026-01-31 09:30:00``). ``customer_id`` is text, ``net_amount`` float64;
    ``order_date`` a timestamp, or on Spark an integer of nanoseconds from a Parquet file written by
    pandas (``_day`` reads both)."""
    text = str(path)
    if format == "auto":
        name = text.lower().removesuffix(".gz")
        format = "csv" if name.endswith((".csv", ".txt", ".tsv")) else "parquet"
    is_spark = con.name == "pyspark"
    if format == "parquet":
        table = con.read_parquet(text)
    elif is_spark:
        table = con.read_csv(text, header=True, inferSchema=False)
    else:
        table = con.read_csv(text, all_varchar=True)
    if columns:
        table = table.rename({new: old for old, new in columns.items()})
    missing = [c for c in ("customer_id", "order_date", "net_amount") if c not in table.columns]
    if missing:
        raise TierbookError(f"{text}: no column {missing[0]!r} (columns: {', '.join(table.columns)}); name it so, or map it with "
                            f"columns={{'<file column>': {missing[0]!r}}}")
    casts: dict[str, Any] = {"customer_id": table.customer_id.cast("string"), "net_amount": table.net_amount.cast("float64")}
    if table.order_date.type().is_string():
        casts["order_date"] = table.order_date.cast("timestamp")
    for name in ("source", "order_id", "channel"):
        if name in table.columns and not table[name].type().is_string():
            casts[name] = table[name].cast("string")
    return table.mutate(**casts) if casts else table


# --------------------------------------------------------------------------- per-order columns


def _day(orders: ir.Table) -> ir.IntegerColumn:
    """Whole days since 1970-01-01 of each order (the day of ``order_date``, as int64)."""
    column = orders.order_date
    dtype = column.type()
    if dtype.is_integer():
        # nanoseconds since 1970 (pandas' Parquet timestamps as Spark reads them). Integer division
        # without a floor division, which the engines do in doubles: ns - ns % day is a multiple of a
        # day, k x 2^16 x 1,318,359,375, exact in a double up to k = 2^22 (the year 13,400), so the
        # division is exact. Days before 1970 never reach here (the data stage rejects them).
        return ((column - column % NS_PER_DAY) / NS_PER_DAY).cast("int64")
    if dtype.is_timestamp():
        column = column.date()
    return column.epoch_days().cast("int64")


def _units(orders: ir.Table) -> ir.IntegerColumn:
    """``net_amount`` in int64 ten-thousandths of the currency unit, as ``summary.to_amount_units``:
    floor(x * 10,000 + 0.5), one multiplication and one addition in doubles in every engine (the same
    IEEE operations in DuckDB, Java and numpy, none fused) and a floor that is exact."""
    return (orders.net_amount.cast("float64") * float(AMOUNT_SCALE) + 0.5).floor().cast("int64")


def _as_of_day(as_of) -> int:
    return int(pd.Timestamp(as_of).normalize().to_datetime64().astype("datetime64[D]").astype(np.int64))


def _date(days) -> pd.Series | pd.Timestamp:
    return pd.to_datetime(np.asarray(days, dtype=np.int64) * NS_PER_DAY) if np.ndim(days) else pd.Timestamp(int(days) * NS_PER_DAY)


def default_as_of(orders: ir.Table) -> pd.Timestamp:
    """The day after the last order (``summary.default_as_of``), from one query."""
    last = orders.select(day=_day(orders)).day.max().execute()
    if last is None or pd.isna(last):
        raise TierbookError("no orders: the orders table is empty")
    return _date(int(last) + 1)


def _no_order_before(orders: ir.Table, as_of: pd.Timestamp) -> TierbookError:
    days = orders.select(day=_day(orders))
    span = days.aggregate(first=days.day.min(), last=days.day.max(), n=days.count()).execute().iloc[0]
    period = f"{_date(span['first']):%Y-%m-%d} to {_date(span['last']):%Y-%m-%d}" if span["n"] else "no orders"
    return TierbookError(f"no order is before as_of {as_of:%Y-%m-%d} (data period {period}); set rfm.as_of to a later date")


# --------------------------------------------------------------------------- the per-customer summary


def _occasions(orders: ir.Table, end_day: int, occasion: str) -> tuple[ir.Table, ir.Value]:
    """The purchase occasions of the orders before ``end_day`` (``customer_id``, ``day``, ``value`` in amount
    units) and the aggregate that gives a customer's first occasion's value."""
    import ibis

    keys = [c for c in ("source", "order_id") if c in orders.columns] if occasion == "order" else []
    prepared = orders.select("customer_id", *keys, **({"at": orders.order_date} if keys else {}),
                             day=_day(orders), units=_units(orders))
    before = prepared.filter(prepared.day < end_day)
    if occasion == "day":
        occasions = before.group_by(["customer_id", "day"]).aggregate(value=before.units.sum())
        return occasions, occasions.value.argmin(occasions.day)  # one occasion per customer and day: no tie
    if occasion == "order":
        if "order_id" not in keys:
            raise TierbookError("occasion: order needs an order_id column in the orders")
        occasions = before.group_by(["customer_id", "day", *keys]).aggregate(value=before.units.sum(), at=before.at.min())
        rank = ibis.row_number().over(group_by="customer_id", order_by=["day", "at", *keys])
        occasions = occasions.mutate(is_first=rank == 0)
        return occasions, occasions.value.sum(where=occasions.is_first)
    raise ValueError(f"occasion must be 'day' or 'order', not {occasion!r}")


def _summary_columns(first_day, last_day, occasions, total, first_value, as_of_day: int, unit: float) -> dict:
    """The summary's columns after ``customer_id`` from a customer's first and last occasion day, number of
    occasions and their total and first value (amount units)."""
    import ibis

    money = total.cast("float64") / float(AMOUNT_SCALE)  # divided once, as in summary.py
    n = occasions.cast("int64")
    frequency = n - 1
    repeat_value = (total - first_value).cast("float64") / float(AMOUNT_SCALE)
    return dict(
        first_day=first_day.cast("int64"),
        last_day=last_day.cast("int64"),
        recency_days=(as_of_day - last_day).cast("int64"),
        purchase_occasions=n,
        monetary_total=money,
        monetary_mean=money / n.cast("float64"),
        tenure_days=(as_of_day - first_day).cast("int64"),
        frequency=frequency,
        recency=(last_day - first_day).cast("float64") / unit,
        T=(as_of_day - 1 - first_day).cast("float64") / unit,
        monetary_value=ibis.ifelse(frequency > 0, repeat_value / ibis.greatest(frequency, 1).cast("float64"), 0.0),
    )


def customer_summary(orders: ir.Table, as_of, *, occasion: Literal["day", "order"] = "day",
                     time_unit: Literal["D", "W", "M", "Q"] = "W") -> ir.Table:
    """The per-customer summary of ``tierbook.summary.customer_summary`` as an Ibis expression
    (one row per customer with an order before ``as_of``, sorted by ``customer_id``); its executed
    result through ``summary_frame`` equals the pandas function's exactly.

    Columns: ``customer_id``, ``first_day`` and ``last_day`` (days since 1970-01-01; ``summary_frame``
    makes them ``first_purchase`` / ``last_purchase``), then ``recency_days`` ... ``monetary_value``
    as in ``tierbook.summary`` (``recency`` is the BTYD t_x, first to last purchase, in ``time_unit``).

    ``occasion="day"`` merges a customer's orders of one calendar day into one purchase occasion;
    ``"order"`` counts each (``source``, ``order_id``) and the first occasion of a customer is the
    first by (``order_date``, ``source``, ``order_id``), the data stage's row order that the pandas
    summary follows."""
    as_of_day = _as_of_day(as_of)
    occasions, first_value = _occasions(orders, as_of_day, occasion)
    per = occasions.group_by("customer_id").aggregate(
        first_day=occasions.day.min(), last_day=occasions.day.max(), occasions=occasions.count(),
        total=occasions.value.sum(), first_value=first_value)
    return per.select(customer_id=per.customer_id, **_summary_columns(
        per.first_day, per.last_day, per.occasions, per.total, per.first_value, as_of_day, DAYS_PER_UNIT[time_unit])).order_by("customer_id")


def customer_summaries(orders: ir.Table, as_ofs: list, *, occasion: Literal["day", "order"] = "day",
                       time_unit: Literal["D", "W", "M", "Q"] = "W", window_days: int | None = None) -> ir.Table:
    """``customer_summary`` at each date of ``as_ofs`` in one pass over the orders, as one wide table: one row
    per customer with an order before the latest date, sorted by ``customer_id``; for date i a column
    ``present_i`` (the customer has an order before it) and the summary's columns suffixed ``_i``
    (meaningless where ``present_i`` is false). With ``window_days``, ``window_occasions_i`` and
    ``window_units_i``: the customer's purchase occasions and net amount units in the ``window_days``
    days before date i (0 for none), as ``summary.customer_summary`` of those orders counts them.

    A customer's first occasion is the same at every date it has one before, so the occasions are grouped
    once and each date's last day, count and total are conditional aggregates: the rfm section's summaries
    at as_of and at the migration base date took 2 queries, 9.8 s CPU at 1M customers (2026-12-02)."""
    ends = [_as_of_day(as_of) for as_of in as_ofs]
    unit = DAYS_PER_UNIT[time_unit]
    occasions, first_value = _occasions(orders, max(ends), occasion)
    day, value = occasions.day, occasions.value
    aggregates = {"first_day": day.min(), "first_value": first_value}
    for i, end in enumerate(ends):
        before = day < end
        aggregates.update({f"last_day_{i}": day.max(where=before).fill_null(0), f"occasions_{i}": occasions.count(where=before),
                           f"total_{i}": value.sum(where=before).fill_null(0)})
        if window_days is not None:
            inside = before & (day >= end - window_days)
            aggregates.update({f"window_occasions_{i}": occasions.count(where=inside),
                               f"window_units_{i}": value.sum(where=inside).fill_null(0)})
    per = occasions.group_by("customer_id").aggregate(**aggregates)
    columns = {}
    for i, end in enumerate(ends):
        present = per[f"occasions_{i}"] > 0
        n = present.ifelse(per[f"occasions_{i}"], 1)  # no division by 0 where absent (Spark's ANSI mode raises)
        summary = _summary_columns(per.first_day, per[f"last_day_{i}"], n, per[f"total_{i}"], per.first_value, end, unit)
        columns.update({f"present_{i}": present, **{f"{name}_{i}": expr for name, expr in summary.items()}})
        if window_days is not None:
            columns.update({f"window_occasions_{i}": per[f"window_occasions_{i}"].cast("int64"),
                            f"window_units_{i}": per[f"window_units_{i}"].cast("int64")})
    return per.select(customer_id=per.customer_id, **columns).order_by("customer_id")


def summary_frame(result, as_of, *, occasion: str = "day", time_unit: str = "W") -> pd.DataFrame:
    """The executed ``customer_summary`` (a DataFrame, or a mapping of its columns' arrays) as
    ``tierbook.summary.customer_summary`` returns it: days as datetime64[ns] midnights, int64 counts,
    object ids, ``COLUMNS`` order and ``attrs``."""
    as_of = pd.Timestamp(as_of).normalize()
    summary = pd.DataFrame({
        "customer_id": np.asarray(result["customer_id"], dtype=object),
        "first_purchase": (np.asarray(result["first_day"], dtype=np.int64) * NS_PER_DAY).view("datetime64[ns]"),
        "last_purchase": (np.asarray(result["last_day"], dtype=np.int64) * NS_PER_DAY).view("datetime64[ns]"),
        **{c: np.asarray(result[c], dtype=np.int64) for c in ("recency_days", "purchase_occasions")},
        **{c: np.asarray(result[c], dtype=np.float64) for c in ("monetary_total", "monetary_mean")},
        "tenure_days": np.asarray(result["tenure_days"], dtype=np.int64),
        "frequency": np.asarray(result["frequency"], dtype=np.int64),
        **{c: np.asarray(result[c], dtype=np.float64) for c in ("recency", "T", "monetary_value")},
    })[COLUMNS]
    summary.attrs.update({"as_of": as_of.date().isoformat(), "time_unit": time_unit, "occasion": occasion})
    return summary


def _arrays(table) -> dict[str, np.ndarray]:
    """An executed result's columns as numpy arrays; text as Python strings by ``to_numpy``: pandas' conversion
    (``to_pandas``) looks each of 1M ids up in a hash table to share repeated strings, 0.6 s against 0.09 s
    (2026-12-02)."""
    return {name: column.to_numpy(zero_copy_only=False) for name, column in zip(table.column_names, table.columns)}


def execute_summary(orders: ir.Table, as_of=None, *, occasion: Literal["day", "order"] = "day",
                    time_unit: Literal["D", "W", "M", "Q"] = "W") -> pd.DataFrame:
    """Run ``customer_summary`` on the orders' backend and return the pandas table (``as_of`` None:
    the day after the last order). Raises ``TierbookError`` when no order is before ``as_of``."""
    as_of = default_as_of(orders) if as_of is None else pd.Timestamp(as_of).normalize()
    result = customer_summary(orders, as_of, occasion=occasion, time_unit=time_unit).to_pyarrow()
    if not result.num_rows:
        raise _no_order_before(orders, as_of)
    return summary_frame(_arrays(result), as_of, occasion=occasion, time_unit=time_unit)


@dataclass
class DatedSummary:
    """One date's result of ``execute_summaries``."""

    summary: pd.DataFrame | None  # ``execute_summary`` at the date; None when no order is before it
    window: pd.DataFrame | None  # per row of ``summary``: purchase_occasions and monetary_total in the window days before the date


def execute_summaries(orders: ir.Table, as_ofs: list, *, occasion: Literal["day", "order"] = "day",
                      time_unit: Literal["D", "W", "M", "Q"] = "W", window_days: int | None = None) -> list[DatedSummary]:
    """Run ``customer_summaries`` and split it: each date's summary, equal to ``execute_summary`` at that date,
    and with ``window_days`` its customers' occasions and net spend (``purchase_occasions``, ``monetary_total``,
    the integer sum divided once) in the window, as ``summary.customer_summary`` of the window's orders gives them.
    Raises ``TierbookError`` when no order is before the first date; a later date without one gets no summary."""
    as_ofs = [pd.Timestamp(as_of).normalize() for as_of in as_ofs]
    columns = _arrays(customer_summaries(orders, as_ofs, occasion=occasion, time_unit=time_unit, window_days=window_days).to_pyarrow())
    ids = columns["customer_id"]
    out = []
    for i, as_of in enumerate(as_ofs):
        present = columns[f"present_{i}"].astype(bool)
        if not present.any():
            if not i:
                raise _no_order_before(orders, as_of)
            out.append(DatedSummary(None, None))
            continue
        everyone = bool(present.all())
        pick = (lambda values: values) if everyone else (lambda values: values[present])
        dated = {"customer_id": pick(ids), **{name[: -len(f"_{i}")]: pick(values) for name, values in columns.items()
                                                if name.endswith(f"_{i}") and not name.startswith(("present_", "window_"))}}
        summary = summary_frame(dated, as_of, occasion=occasion, time_unit=time_unit)
        window = None
        if window_days is not None:
            window = pd.DataFrame({"purchase_occasions": pick(columns[f"window_occasions_{i}"]).astype(np.int64),
                                   "monetary_total": pick(columns[f"window_units_{i}"]).astype(np.int64) / AMOUNT_SCALE})
        out.append(DatedSummary(summary, window))
    return out


# --------------------------------------------------------------------------- cohorts and months


def _month(orders: ir.Table) -> ir.IntegerColumn:
    """The calendar month of each order as pandas' monthly Period ordinal ((year - 1970) x 12 + month - 1)."""
    import ibis

    date = ibis.date(1970, 1, 1) + _day(orders).as_interval("D")
    return ((date.year() - 1970) * 12 + date.month() - 1).cast("int64")


def cohort_counts(orders: ir.Table, as_of) -> ir.Table:
    """Customers buying per acquisition cohort (month of the first order) and age (months since
    it), from the orders before ``as_of``: the heavy part of ``churn.cohort_retention``
    (distinct customer-months, each customer's first month, counts)."""
    prepared = orders.select("customer_id", day=_day(orders), month=_month(orders))
    months = prepared.filter(prepared.day < _as_of_day(as_of)).select("customer_id", "month").distinct()
    first = months.group_by("customer_id").aggregate(cohort=months.month.min())
    joined = months.join(first, "customer_id")
    return (joined.group_by([joined.cohort, (joined.month - joined.cohort).name("age")])
            .aggregate(customers=joined.count()).order_by(["cohort", "age"]))


def cohort_retention(orders: ir.Table, as_of, max_cohorts: int = 24) -> pd.DataFrame:
    """``churn.cohort_retention`` with the counting on the engine and the small pivot in pandas
    (the same steps as there, so the tables are equal; tests/test_engine.py checks it)."""
    as_of = pd.Timestamp(as_of).normalize()
    counts = cohort_counts(orders, as_of).to_pandas()
    counts = counts.assign(cohort=pd.PeriodIndex.from_ordinals(counts["cohort"].astype(np.int64), freq="M"),
                           age=counts["age"].astype(np.int64), customers=counts["customers"].astype(np.int64))
    return cohort_table(counts.set_index(["cohort", "age"])["customers"], as_of, max_cohorts)


def cohort_table(per_cell: pd.Series, as_of: pd.Timestamp, max_cohorts: int = 24) -> pd.DataFrame:
    """The retention table from the customers active per (cohort month, age in months): shares of
    each cohort's size, the last ``max_cohorts`` cohorts, a ``customers`` column first. Shared by
    this module and ``churn.cohort_retention``."""
    per_cell = per_cell.rename(None)
    sizes = per_cell.xs(0, level="age")
    last_month = (as_of - pd.Timedelta(days=1)).to_period("M")
    ages = range(0, max((last_month - sizes.index.min()).n + 1, 1))
    active = per_cell.unstack("age").reindex(columns=ages).fillna(0)
    table = active.div(sizes, axis=0)
    observable = np.array([[age <= (last_month - cohort).n for age in ages] for cohort in table.index])
    table = table.where(observable).iloc[-max_cohorts:]  # months after the data ends are blank, months without a buyer 0
    table.index = table.index.astype(str)
    table.insert(0, "customers", sizes.reindex(table.index.map(pd.Period)).to_numpy())
    return table


def monthly_expr(orders: ir.Table) -> ir.Table:
    """Orders, customers and net revenue per calendar month and channel (``data.monthly``), with
    the month as a Period ordinal and revenue in amount units (``monthly`` converts both)."""
    prepared = orders.filter(orders.channel.notnull()).select("customer_id", "channel", month=_month(orders), units=_units(orders))
    return (prepared.group_by(["month", "channel"])
            .aggregate(orders=prepared.count(), customers=prepared.customer_id.nunique(), units=prepared.units.sum())
            .order_by(["month", "channel"]))


def monthly(orders: ir.Table) -> pd.DataFrame:
    """``data.monthly`` on the engine: month (first day, datetime64[ns]), channel, orders,
    customers, revenue. Revenue is the integer sum divided once (see the module docstring); pandas'
    float sum agrees with it to the last bit or two."""
    result = monthly_expr(orders).to_pandas()
    month = pd.PeriodIndex.from_ordinals(result["month"].astype(np.int64), freq="M").to_timestamp()
    return pd.DataFrame({
        "month": month.astype("datetime64[ns]"),
        "channel": result["channel"].to_numpy(dtype=object),
        "orders": result["orders"].to_numpy(dtype=np.int64),
        "customers": result["customers"].to_numpy(dtype=np.int64),
        "revenue": result["units"].to_numpy(dtype=np.int64) / AMOUNT_SCALE,
    })


# --------------------------------------------------------------------------- the pipeline's stages


def run_orders(params, run_dir: Path) -> ir.Table:
    """The run's clean orders (``data/orders.parquet``) on params' engine."""
    return orders_table(connection(params.engine), Path(run_dir) / "data" / "orders.parquet")


def run_summary(params, run_dir: Path, as_of, *, occasion: Literal["day", "order"] = "day",
                time_unit: Literal["D", "W", "M", "Q"] = "W") -> pd.DataFrame:
    """The per-customer summary of a run's orders on params' engine: what the RFM, CLV and churn
    sections start from (equal to ``summary.customer_summary`` of the same orders)."""
    try:
        return execute_summary(run_orders(params, run_dir), as_of, occasion=occasion, time_unit=time_unit)
    finally:
        release(params.engine)


def run_summaries(params, run_dir: Path, as_ofs: list, *, occasion: Literal["day", "order"] = "day",
                  time_unit: Literal["D", "W", "M", "Q"] = "W", window_days: int | None = None) -> list[DatedSummary]:
    """``execute_summaries`` of a run's orders on params' engine: ``run_summary`` at several dates in one query."""
    try:
        return execute_summaries(run_orders(params, run_dir), as_ofs, occasion=occasion, time_unit=time_unit, window_days=window_days)
    finally:
        release(params.engine)


def run_cohorts(params, run_dir: Path, as_of, max_cohorts: int = 24) -> pd.DataFrame:
    """``churn.cohort_retention`` of a run's orders on params' engine."""
    try:
        return cohort_retention(run_orders(params, run_dir), as_of, max_cohorts)
    finally:
        release(params.engine)
