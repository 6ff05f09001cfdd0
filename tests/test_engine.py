"""The transaction engine (tierbook.engine): the per-customer summary, cohorts and monthly figures
as Ibis expressions equal the pandas functions exactly, on DuckDB and, row for row, on PySpark."""

import shutil
from decimal import Decimal
from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pytest

from tierbook import churn, data, engine
from tierbook.errors import TierbookError
from tierbook.params import Engine, load_params
from tierbook.summary import COLUMNS, customer_summary

from .conftest import REPO, demo_files


def orders(rows):
    """Clean orders as the data stage writes them: sorted by (order_date, source, order_id)."""
    df = pd.DataFrame(rows, columns=["customer_id", "order_id", "order_date", "net_amount"])
    df["order_date"] = pd.to_datetime(df["order_date"])
    df["source"] = "shop"
    df["channel"] = "store"
    return df.sort_values(["order_date", "source", "order_id"], kind="stable").reset_index(drop=True)


# 10.10 + 5.20 is 15.299999999999999 in floats and 65.65 - 15.3 is 50.35000000000001: summed as
# integers, A's repeat value is 25.175 exactly (a float sum gives 25.175000000000004)
HAND = orders([
    ("007", "1", "2024-01-01 09:00:00", 10.10),
    ("007", "2", "2024-01-01 18:00:00", 5.20),   # same day as order 1: one occasion of 15.30
    ("007", "3", "2024-01-15 12:00:00", 20.00),
    ("007", "4", "2024-02-12 12:00:00", 30.35),
    ("B", "5", "2024-02-20 10:00:00", 7.00),
    ("B", "6", "2024-03-01 00:00:00", 99.00),    # on as_of: excluded
    ("C", "7", "2024-02-01 08:00:00", 0.00),     # a zero-amount sale (clean.zero_amount_sales: keep)
    ("C", "8", "2024-02-29 23:59:59", 0.30),     # the last second before as_of
])
AS_OF = "2024-03-01"


@pytest.fixture(scope="module")
def duck():
    return engine.connect()


@pytest.fixture(scope="module")
def hand_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("hand") / "orders.csv"
    HAND.to_csv(path, index=False)
    return path


def test_hand_computed_summary_by_day(duck, hand_csv):
    s = engine.execute_summary(engine.orders_table(duck, hand_csv), AS_OF, occasion="day", time_unit="D")
    assert list(s.columns) == COLUMNS and list(s["customer_id"]) == ["007", "B", "C"]  # the CSV's ids stay text
    a, b, c = (s.set_index("customer_id").loc[k] for k in ("007", "B", "C"))
    # 007: occasions 2024-01-01 (15.30), 01-15 (20.00), 02-12 (30.35); as_of 2024-03-01 is day 60 of 2024
    assert (a["purchase_occasions"], a["monetary_total"], a["monetary_mean"]) == (3, 65.65, 65.65 / 3)
    assert (a["frequency"], a["recency"], a["T"], a["monetary_value"]) == (2, 42.0, 59.0, 25.175)
    assert (a["recency_days"], a["tenure_days"], a["first_purchase"], a["last_purchase"]) == (
        18, 60, pd.Timestamp("2024-01-01"), pd.Timestamp("2024-02-12"))
    # B: one occasion (the order on as_of does not count): T from 02-20 to 02-29
    assert (b["purchase_occasions"], b["monetary_total"], b["frequency"], b["recency"], b["T"], b["monetary_value"], b["recency_days"]) == (
        1, 7.0, 0, 0.0, 9.0, 0.0, 10)
    # C: a zero sale then 0.30 at 23:59:59 on the day before as_of
    assert (c["purchase_occasions"], c["monetary_total"], c["monetary_mean"], c["frequency"], c["recency"], c["T"], c["monetary_value"],
            c["recency_days"]) == (2, 0.3, 0.15, 1, 28.0, 28.0, 0.3, 1)
    assert s.attrs == {"as_of": AS_OF, "time_unit": "D", "occasion": "day"}


def test_hand_computed_summary_by_order_in_weeks(duck):
    s = engine.execute_summary(ibis.memtable(HAND), AS_OF, occasion="order", time_unit="W").set_index("customer_id")
    a = s.loc["007"]
    # four occasions; the first is order 1 (09:00), so the repeat value is (5.20 + 20.00 + 30.35) / 3
    assert (a["purchase_occasions"], a["frequency"], a["monetary_value"]) == (4, 3, 55.55 / 3)
    assert (a["recency"], a["T"]) == (6.0, 59 / 7)


def test_hand_case_equals_the_pandas_summary_and_pandas_sums_are_exact_too(duck, hand_csv):
    table = engine.orders_table(duck, hand_csv)
    for occasion in ("day", "order"):
        for unit in ("D", "W", "M", "Q"):
            pd.testing.assert_frame_equal(engine.execute_summary(table, AS_OF, occasion=occasion, time_unit=unit),
                                          customer_summary(HAND, AS_OF, occasion=occasion, time_unit=unit), check_exact=True)


def test_no_order_before_as_of_is_the_same_one_line_error(duck):
    table = ibis.memtable(HAND)
    with pytest.raises(TierbookError) as ours:
        engine.execute_summary(table, "2023-01-01")
    with pytest.raises(TierbookError) as theirs:
        customer_summary(HAND, "2023-01-01")
    assert str(ours.value) == str(theirs.value) == (
        "no order is before as_of 2023-01-01 (data period 2024-01-01 to 2024-03-01); set rfm.as_of to a later date")
    assert engine.default_as_of(table) == pd.Timestamp("2024-03-02")


# --------------------------------------------------------------------------- a demo run


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """A demo data run at 2,000 customers: (its orders.parquet, the orders as pandas reads them)."""
    params, run, _ = demo_files(tmp_path_factory.mktemp("engine"), 2000)
    data.run_data_stage(params, run.parent, run)
    path = run / "data" / "orders.parquet"
    return path, pd.read_parquet(path)


@pytest.mark.parametrize("occasion", ["day", "order"])
@pytest.mark.parametrize("time_unit", ["W", "D"])
def test_duckdb_summary_equals_the_pandas_summary_on_a_demo_run(duck, demo_run, occasion, time_unit):
    path, frame = demo_run
    as_of = pd.Timestamp("2025-09-15")  # leaves later orders out
    ours = engine.execute_summary(engine.orders_table(duck, path), as_of, occasion=occasion, time_unit=time_unit)
    theirs = customer_summary(frame, as_of, occasion=occasion, time_unit=time_unit)
    assert len(ours) > 1500 and (frame["order_date"] >= as_of).any()
    pd.testing.assert_frame_equal(ours, theirs, check_exact=True)
    assert ours.attrs == theirs.attrs


def test_the_run_helpers_close_their_duckdb_connection_and_the_next_call_opens_another(demo_run, tmp_path):
    # DuckDB's allocator keeps what a query freed until its database is closed (0.6 GiB after the rfm section's
    # summaries at 1.4M customers): run_summary, run_summaries and run_cohorts close the connection they used
    path, frame = demo_run
    run = tmp_path / "run"
    (run / "data").mkdir(parents=True)
    (run / "data" / "orders.parquet").symlink_to(path)
    params = load_params("demo", REPO / "params")
    as_of = pd.Timestamp("2025-09-15")
    opened = []
    real_connect = engine.connect
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine, "_CONNECTIONS", {})  # none from another test of this process
        patch.setattr(engine, "connect", lambda settings=None: opened.append(real_connect(settings)) or opened[-1])
        first = engine.run_summary(params, run, as_of)
        again = engine.run_summaries(params, run, [as_of])[0].summary
        cohorts = engine.run_cohorts(params, run, as_of)
        assert len(opened) == 3 and not engine._CONNECTIONS
    for con in opened:  # closed: a query on it fails
        with pytest.raises(Exception):
            con.raw_sql("select 1").fetchall()
    pd.testing.assert_frame_equal(first, customer_summary(frame, as_of), check_exact=True)
    pd.testing.assert_frame_equal(again, first, check_exact=True)
    pd.testing.assert_frame_equal(cohorts, churn.cohort_retention(frame, as_of))


def window_of(frame, as_of, days, occasion, time_unit):
    """The pandas summary of the orders in the ``days`` days before ``as_of``: what ``execute_summaries``' window counts."""
    recent = frame[frame["order_date"] >= pd.Timestamp(as_of) - pd.Timedelta(days=days)]
    return customer_summary(recent, as_of, occasion=occasion, time_unit=time_unit).set_index("customer_id")


def assert_summaries(dated, table, frame, as_ofs, occasion, time_unit, window_days):
    """Each date's summary is ``execute_summary``'s at that date, and its window the window's pandas summary."""
    for as_of, one in zip(as_ofs, dated):
        alone = engine.execute_summary(table, as_of, occasion=occasion, time_unit=time_unit)
        pd.testing.assert_frame_equal(one.summary, alone, check_exact=True)
        assert one.summary.attrs == alone.attrs
        assert one.window.index.equals(one.summary.index)
        window = one.window.set_axis(one.summary["customer_id"])
        expected = window_of(frame, as_of, window_days, occasion, time_unit)[["purchase_occasions", "monetary_total"]]
        bought = window["purchase_occasions"] > 0
        pd.testing.assert_frame_equal(window[bought], expected, check_exact=True, check_names=False)
        assert (window.loc[~bought, "monetary_total"] == 0).all() and (~bought).any() and bought.any()


@pytest.mark.parametrize("occasion, time_unit", [("day", "W"), ("order", "D")])
def test_summaries_at_several_dates_equal_one_summary_per_date(duck, demo_run, occasion, time_unit):
    """One query for several dates (the rfm section's as_of and migration base date) and the tier window gives each
    date's summary exactly, and the window's occasions and spend as the pandas summary of the window's orders."""
    path, frame = demo_run
    table = engine.orders_table(duck, path)
    as_ofs = [pd.Timestamp("2025-12-01"), pd.Timestamp("2024-03-15"), pd.Timestamp("2024-09-01")]
    dated = engine.execute_summaries(table, as_ofs, occasion=occasion, time_unit=time_unit, window_days=60)
    assert len({len(one.summary) for one in dated}) == 3  # customers join between the dates
    assert_summaries(dated, table, frame, as_ofs, occasion, time_unit, 60)
    plain = engine.execute_summaries(table, as_ofs[:1], occasion=occasion, time_unit=time_unit)
    assert plain[0].window is None
    pd.testing.assert_frame_equal(plain[0].summary, dated[0].summary, check_exact=True)


def test_summaries_before_the_first_order(duck):
    """A later date without an order before it has no summary; the first date must have one (execute_summary's error)."""
    table = ibis.memtable(HAND)
    before, after = engine.execute_summaries(table, [AS_OF, "2023-06-01"], window_days=30)
    assert after.summary is None and after.window is None
    pd.testing.assert_frame_equal(before.summary, customer_summary(HAND, AS_OF), check_exact=True)
    # hand-computed window, 2024-01-31 .. 2024-02-29: 007 bought on 02-12 (30.35), B on 02-20 (7.00), C on 02-01 and 02-29
    assert before.window.to_dict("list") == {"purchase_occasions": [1, 1, 2], "monetary_total": [30.35, 7.0, 0.3]}
    with pytest.raises(TierbookError, match="no order is before as_of 2023-06-01"):
        engine.execute_summaries(table, ["2023-06-01", AS_OF])


def test_sums_are_the_exact_decimal_sums(duck, demo_run):
    """Both summaries sum integers: each customer's total is the double nearest the exact decimal sum
    of their orders' amounts (to 1/10,000; 7% of the demo's net amounts carry float noise such as
    118.61000000000001 from adding lines), whatever the order of the additions."""
    path, frame = demo_run
    ours = engine.execute_summary(engine.orders_table(duck, path)).set_index("customer_id")["monetary_total"]
    exact = frame.groupby("customer_id", observed=True)["net_amount"].agg(exact_sum)
    assert (ours == exact.reindex(ours.index)).all()
    floats = frame.groupby("customer_id", observed=True)["net_amount"].agg(lambda x: sum(x.tolist()))  # a float sum, row order
    assert (floats.reindex(ours.index) != ours).sum() > 0  # ... which is not always the nearest double


def test_cohorts_and_monthly_equal_the_pandas_functions(duck, demo_run):
    path, frame = demo_run
    table = engine.orders_table(duck, path)
    for as_of in (pd.Timestamp("2025-09-15"), data_default_as_of(frame)):
        for max_cohorts in (24, 6):
            pd.testing.assert_frame_equal(engine.cohort_retention(table, as_of, max_cohorts), churn.cohort_retention(frame, as_of, max_cohorts),
                                          check_exact=True)
    ours, theirs = engine.monthly(table), data.monthly(frame)
    pd.testing.assert_frame_equal(ours.drop(columns="revenue"), theirs.drop(columns="revenue"), check_exact=True)
    # revenue: the engine's integer sum is the exact decimal sum; pandas' float sum is within an ulp or two
    np.testing.assert_allclose(ours["revenue"], theirs["revenue"], rtol=1e-14, atol=0)
    month = frame["order_date"].dt.to_period("M").dt.to_timestamp()
    exact = frame.groupby([month, "channel"])["net_amount"].agg(exact_sum)
    assert (ours["revenue"].to_numpy() == exact.to_numpy()).all()


def exact_sum(amounts: pd.Series) -> float:
    """The double nearest the exact sum of the amounts rounded to 4 decimals."""
    return float(sum(Decimal(repr(round(v, 4))) for v in amounts))


def data_default_as_of(frame):
    from tierbook.summary import default_as_of

    return default_as_of(frame)


def test_a_glob_of_parquet_files_reads_as_one_table(duck, demo_run, tmp_path):
    path, frame = demo_run
    shuffled = frame.sample(frac=1, random_state=0)
    for i, part in enumerate((shuffled.iloc[:3000], shuffled.iloc[3000:6000], shuffled.iloc[6000:])):
        part.to_parquet(tmp_path / f"orders-{i}.parquet", index=False)
    ours = engine.execute_summary(engine.orders_table(duck, str(tmp_path / "orders-*.parquet")), occasion="order")
    pd.testing.assert_frame_equal(ours, engine.execute_summary(engine.orders_table(duck, path), occasion="order"), check_exact=True)


def test_orders_table_names_a_missing_column_and_maps_file_columns(duck, tmp_path):
    path = tmp_path / "shop.csv"
    HAND.rename(columns={"customer_id": "会员卡号", "net_amount": "金额"}).to_csv(path, index=False)
    with pytest.raises(TierbookError, match=r"shop.csv: no column 'customer_id' \(columns: .*会员卡号"):
        engine.orders_table(duck, path)
    table = engine.orders_table(duck, path, columns={"会员卡号": "customer_id", "金额": "net_amount"})
    pd.testing.assert_frame_equal(engine.execute_summary(table, AS_OF), customer_summary(HAND, AS_OF), check_exact=True)


# --------------------------------------------------------------------------- params and connections


def test_engine_params_default_to_duckdb_and_validate(tmp_path):
    params = load_params("demo", REPO / "params")
    assert params.engine == Engine() and params.engine.kind == "duckdb" and params.engine.spark.master == "local[2]"
    spark = Engine.model_validate({"kind": "pyspark", "spark": {"remote": "sc://cluster:15002", "config": {"spark.executor.memory": "8g"}}})
    assert spark.spark.config == {"spark.executor.memory": "8g"}
    for bad, message in (({"kind": "spark"}, "'duckdb' or 'pyspark'"), ({"spark": {"config": {"executor.memory": "8g"}}}, "not a Spark setting"),
                         ({"duckdb": {"memory_limit": "lots"}}, "'lots' is not a size; write it as DuckDB does, e.g. 4GB"),
                         ({"spark": {"remote": "cluster:15002"}}, "not a Spark Connect URL; write sc://host:15002")):
        with pytest.raises(ValueError, match=message):
            Engine.model_validate(bad)


def test_duckdb_settings_reach_duckdb(tmp_path):
    con = engine.connect({"duckdb": {"threads": 1, "memory_limit": "512MB", "temp_directory": str(tmp_path / "spill")}})
    threads, limit, temp, progress = con.raw_sql("select current_setting('threads'), current_setting('memory_limit'), "
                                                 "current_setting('temp_directory'), current_setting('enable_progress_bar')").fetchone()
    assert (threads, temp, progress) == (1, str(tmp_path / "spill"), False) and limit in ("488.2 MiB", "512.0 MB")


def test_a_forked_process_makes_its_own_connection(demo_run):
    """Sections run in processes forked from make report's (run.executor: fork): a connection made
    before the fork is not reused in the child, which summarises with its own."""
    import multiprocessing

    global _PARENT_CONNECTION
    path, frame = demo_run
    _PARENT_CONNECTION = engine.connection()
    assert engine.connection() is _PARENT_CONNECTION
    with multiprocessing.get_context("fork").Pool(1) as pool:
        rows, reused = pool.apply_async(_summary_in_child, (str(path),)).get(timeout=300)
    assert not reused and rows == frame["customer_id"].nunique()


_PARENT_CONNECTION = None


def _summary_in_child(path: str) -> tuple[int, bool]:
    con = engine.connection()
    return len(engine.execute_summary(engine.orders_table(con, path))), con is _PARENT_CONNECTION


def test_pyspark_without_java_is_a_one_line_error(monkeypatch):
    pytest.importorskip("pyspark")
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(TierbookError, match=r"engine.kind is pyspark with master 'local\[2\]', but no Java is on PATH"):
        engine.connect({"kind": "pyspark"})


# --------------------------------------------------------------------------- PySpark, local mode


@pytest.fixture(scope="module")
def spark():
    """One local SparkSession for the module (start-up is most of the cost), stopped at the end."""
    if shutil.which("java") is None:
        pytest.skip("PySpark engine: no `java` on PATH (Spark 4.0 needs Java 17 or 21)")
    pytest.importorskip("pyspark", reason="PySpark engine: pyspark is not installed (pip install 'tierbook[spark]')")
    con = engine.connect({"kind": "pyspark", "spark": {"master": "local[2]", "app_name": "tierbook-tests", "config": {
        "spark.ui.enabled": False, "spark.sql.shuffle.partitions": 4, "spark.log.level": "ERROR",
        "spark.driver.memory": "1g"}}})
    yield con
    con._session.stop()


def test_spark_summary_equals_duckdb_row_for_row(spark, duck, demo_run):
    path, frame = demo_run
    on_spark, on_duckdb = engine.orders_table(spark, path), engine.orders_table(duck, path)
    assert on_spark.order_date.type().is_integer()  # pandas' nanosecond timestamps, read as a long (SPARK_DEFAULTS)
    as_of = engine.default_as_of(on_spark)
    assert as_of == engine.default_as_of(on_duckdb) == pd.Timestamp("2026-01-01")
    for occasion, time_unit in (("day", "W"), ("order", "D")):
        ours = engine.execute_summary(on_spark, as_of, occasion=occasion, time_unit=time_unit)
        pd.testing.assert_frame_equal(ours, engine.execute_summary(on_duckdb, as_of, occasion=occasion, time_unit=time_unit), check_exact=True)
        pd.testing.assert_frame_equal(ours, customer_summary(frame, as_of, occasion=occasion, time_unit=time_unit), check_exact=True)
    as_ofs = [as_of, as_of - pd.Timedelta(days=90)]
    for occasion, time_unit in (("day", "W"), ("order", "D")):
        on_both = [engine.execute_summaries(table, as_ofs, occasion=occasion, time_unit=time_unit, window_days=365)
                   for table in (on_spark, on_duckdb)]
        for ours, theirs in zip(*on_both):
            pd.testing.assert_frame_equal(ours.summary, theirs.summary, check_exact=True)
            pd.testing.assert_frame_equal(ours.window, theirs.window, check_exact=True)
        assert_summaries(on_both[0], on_duckdb, frame, as_ofs, occasion, time_unit, 365)
    pd.testing.assert_frame_equal(engine.cohort_retention(on_spark, as_of), engine.cohort_retention(on_duckdb, as_of), check_exact=True)
    pd.testing.assert_frame_equal(engine.monthly(on_spark), engine.monthly(on_duckdb), check_exact=True)


def test_spark_reads_csv_with_text_ids_and_timestamps(spark, hand_csv):
    table = engine.orders_table(spark, hand_csv)
    assert table.order_date.type().is_timestamp() and table.customer_id.type().is_string()
    pd.testing.assert_frame_equal(engine.execute_summary(table, AS_OF, occasion="order", time_unit="W"),
                                  customer_summary(HAND, AS_OF, occasion="order", time_unit="W"), check_exact=True)
