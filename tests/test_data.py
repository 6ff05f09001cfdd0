"""The data section's sentences in both languages (the stage itself is tested in test_clean and test_pipeline)."""

import datetime as dt

import pytest

from tests.conftest import demo_files


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory):
    from tierbook.data import run_data_stage

    root = tmp_path_factory.mktemp("data")
    params, run, _ = demo_files(root, 400)
    return run_data_stage(params, root, run, today=dt.date(2026, 1, 5)), params


def test_narrative_in_english_and_chinese(demo_data, tmp_path):
    from tierbook import i18n
    from tierbook.data import narrative, table_label

    stage, params = demo_data
    english = narrative(stage, params.currency)
    assert "transaction rows were read from 2 sources:" in english and "The customers table has 400 clean rows." in english
    assert table_label("customers") == "customers"
    log = tmp_path / "missing.txt"
    try:
        i18n.set_lang("zh", {}, log)
        chinese = narrative(stage, params.currency)
        assert table_label("customers") == "客户表" and table_label("orders_2") == "orders_2"
    finally:
        i18n.set_lang("en")
    assert not log.exists(), log.read_text(encoding="utf-8")
    assert "共从 2 个数据源读取" in chinese and "客户表有 400 行清洗后的数据。" in chinese and "数据行未按原样保留的最常见原因：" in chinese
    reason = chinese.split("最常见原因：")[1]
    assert any(c >= "\u4e00" for c in reason.split("（")[0])  # the reason itself in Chinese (clean.REASONS translated)


def test_every_rejection_reason_has_a_chinese_explanation():
    from tierbook import i18n
    from tierbook.clean import REASONS

    assert [text for text in REASONS.values() if text not in i18n.catalog("zh")] == []


def _frames():
    import numpy as np
    import pandas as pd

    # a text column missing from the first rows (its type comes from later ones), Arrow strings with gaps, dates, and
    # a second frame that starts inside a row group
    first = pd.DataFrame({"table": ["t"] * 5, "note": [None, None, None, None, "late"],
                          "customer_id": pd.array(["b", "a", "c", "a", "b"], dtype="string"),
                          "when": pd.to_datetime(["2024-01-01", None, "2024-01-03", "2024-01-04", "2024-01-05"]),
                          "amount": [1.5, np.nan, 3.0, 4.0, 5.0]})
    second = pd.DataFrame({"table": ["u"] * 4, "note": [None, "x", None, None],
                           "customer_id": pd.array(["c", None, "a", "b"], dtype="string"),
                           "when": pd.to_datetime(["2024-02-01"] * 4), "amount": [6.0, 7.0, 8.0, 9.0]})
    return first, second


def test_parquet_written_a_row_group_at_a_time_is_the_file_of_the_whole_table(tmp_path, monkeypatch):
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tierbook import data

    monkeypatch.setattr(data, "ROW_GROUP", 3)
    first, second = _frames()
    columns = list(first.columns)
    whole = pd.concat([first, second], ignore_index=True)
    expected, got = tmp_path / "whole.parquet", tmp_path / "parts.parquet"
    table = pa.Table.from_pandas(whole, preserve_index=False)
    pq.write_table(table, expected, row_group_size=3, use_dictionary=[c for c in columns if c in data.DICTIONARY_COLUMNS],
                   write_statistics=["when", "amount"])  # not the text columns' (data.statistics_columns)
    assert data.statistics_columns(table.schema) == ["when", "amount"]
    data._write_by_row_group([first, second], columns, got)
    assert pq.ParquetFile(got).num_row_groups == 3
    assert got.read_bytes() == expected.read_bytes()

    # the rows at positions of one frame, customer ids as codes of sorted categories: the file of the taken rows with
    # customer_id a categorical of those categories (as the later sections read it)
    positions = np.array([4, 0, 2, 3])
    taken = first.take(positions).reset_index(drop=True)
    codes, ids = data.customer_codes(taken["customer_id"])
    data._write_by_row_group([first], columns, got, positions, codes, ids)
    read = pd.read_parquet(got)
    assert read["customer_id"].cat.categories.tolist() == ["a", "b", "c"]
    assert read["customer_id"].astype(str).tolist() == ["b", "b", "c", "a"]
    assert read["note"].tolist() == ["late", None, None, None] and pq.ParquetFile(got).schema_arrow.field("note").type == pa.string()
    pd.testing.assert_frame_equal(read.assign(customer_id=read["customer_id"].astype(str)),
                                  taken.assign(customer_id=taken["customer_id"].astype(object)), check_dtype=False)
    assert read["amount"].tolist()[:2] == [5.0, 1.5] and read["when"].dtype == "datetime64[ns]"

    # a numeric column kept in a file while cleaning ran (clean.spill_passengers): the same bytes, a row group's span read
    from tierbook import clean

    (tmp_path / "spill").mkdir()
    rest = first.copy()
    spilled = clean.spill_passengers(rest.rename(columns={"amount": "quantity"}), tmp_path / "spill")
    assert list(spilled) == ["quantity"]
    spilled = {"amount": clean.SpilledColumn("amount", spilled["quantity"].path, spilled["quantity"].dtype)}
    for at in ([4, 0, 2, 3], [0, 1, 3, 4], [2], []):  # any positions, gathered a block of positions at a time
        taken = spilled["amount"].take(np.array(at, dtype=np.int64), block=2)
        assert taken.fillna(-1).tolist() == first["amount"].take(at).fillna(-1).tolist() and taken.dtype == np.float64
    in_memory = got.read_bytes()
    data._write_by_row_group([rest.drop(columns="amount")], columns, got, positions, codes, ids, spilled)
    assert got.read_bytes() == in_memory

    # nothing to write: the schema alone
    data._write_by_row_group([first.head(0)], columns, got)
    assert pq.read_table(got).num_rows == 0 and pq.read_table(got).column_names == columns


def test_read_clean_is_read_parquet_with_the_ids_codes_taken_a_row_group_at_a_time(tmp_path, monkeypatch):
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tierbook import data

    monkeypatch.setattr(data, "ROW_GROUP", 2)
    first, _ = _frames()
    positions = np.array([4, 0, 2, 3, 1])
    codes, ids = data.customer_codes(first.take(positions)["customer_id"])
    path = tmp_path / "t.parquet"
    data._write_by_row_group([first], list(first.columns), path, positions, codes, ids)
    assert pq.ParquetFile(path).num_row_groups == 3
    for columns, dictionary in ((None, None), (["amount", "customer_id"], None), (["customer_id"], None), (["customer_id", "note"], ["note"]),
                                (["amount"], None)):
        want = pd.read_parquet(path, columns=columns, read_dictionary=dictionary)
        got = data.read_clean(path, columns=columns, read_dictionary=dictionary)
        pd.testing.assert_frame_equal(got, want, check_exact=True)
        if columns is None or "customer_id" in columns:
            assert got["customer_id"].astype(str).tolist() == first["customer_id"].take(positions).tolist() == ["b", "b", "c", "a", "a"]

    # rows written as the data stage writes its lines and orders (``_by_customer``): each row group holds a span of the
    # customers, its rows in their order, and the span of the sorted ids they use; the spans are joined on reading (the
    # customer at the boundary, b, counted once)
    monkeypatch.setattr(data, "ROW_GROUP", 3)
    order = data._by_customer(codes)
    assert order.tolist() == [0, 3, 4, 1, 2]  # rows b a a | b c (codes 1 0 0 | 1 2)
    data._write_by_row_group([first], list(first.columns), path, positions[order], codes[order], ids)
    file = pq.ParquetFile(path)
    spans = [file.read_row_group(g, columns=["customer_id"]).column(0).chunk(0).dictionary.to_pylist() for g in range(file.num_row_groups)]
    assert spans == [["a", "b"], ["b", "c"]]  # not all three ids in each
    for columns in (None, ["customer_id"], ["amount", "customer_id"]):
        got = data.read_clean(path, columns=columns)
        pd.testing.assert_frame_equal(got, pd.read_parquet(path, columns=columns), check_exact=True)
    assert got["customer_id"].cat.categories.tolist() == ["a", "b", "c"] and got["customer_id"].cat.codes.tolist() == [1, 0, 0, 1, 2]
    assert got["amount"].fillna(-1).tolist() == [5.0, 4.0, -1, 1.5, 3.0]
    # rows in any other order: every row group holds all the ids, as before
    data._write_by_row_group([first], list(first.columns), path, positions, codes, ids)
    file = pq.ParquetFile(path)
    assert [len(file.read_row_group(g, columns=["customer_id"]).column(0).chunk(0).dictionary) for g in range(2)] == [3, 3]

    # the order at scale: a permutation, each row group a span of customers that starts where the one before ends, its
    # rows in increasing position; a customer's rows stay in their order
    many = np.random.default_rng(7).integers(0, 500, 10_000).astype(np.int32)
    order = data._by_customer(many, 1_000)
    assert np.array_equal(np.sort(order), np.arange(len(many)))
    blocks = order.reshape(10, 1_000)
    assert (np.diff(blocks, axis=1) > 0).all()
    assert (many[blocks].max(axis=1)[:-1] <= many[blocks].min(axis=1)[1:]).all()
    assert np.array_equal(order[np.argsort(many[order], kind="stable")], np.argsort(many, kind="stable"))
    for few in (many % 3, np.zeros(2_500, dtype=np.int32)):  # customers whose rows cross several row groups' boundaries
        expected = np.argsort(few, kind="stable")  # by customer, then each row group's rows by position
        for start in range(0, len(few), 1_000):
            expected[start:start + 1_000].sort()
        assert np.array_equal(data._by_customer(few, 1_000), expected)

    # the joining of spans: row groups' dictionaries that are not sorted, distinct spans of one list are refused
    ids_of = lambda *names: [pa.array(n, type=pa.string()) for n in names]
    codes_of = lambda *lengths: [np.arange(n, dtype=np.int32) for n in lengths]
    joined = data._chained_ids(ids_of(["a", "b"], ["b", "c"], ["b", "c"], ["d"]), got_codes := codes_of(2, 2, 2, 1))
    assert joined.to_pylist() == ["a", "b", "c", "d"] and [c.tolist() for c in got_codes] == [[0, 1], [1, 2], [1, 2], [3]]
    for refused in (ids_of(["a", "c"], ["b"]), ids_of(["b", "a"], ["c"]), ids_of(["a", "a"], ["b"])):
        assert data._chained_ids(refused, codes_of(*map(len, refused))) is None
    assert data._chained_ids([], []) is None

    # row groups whose dictionaries differ (not a file of the data stage): read the plain way, the same frame
    table = lambda names: pa.table({"customer_id": pa.array(names).dictionary_encode(), "x": pa.array(range(len(names)))})
    with pq.ParquetWriter(path, table(["a"]).schema) as writer:
        writer.write_table(table(["b", "a"]))
        writer.write_table(table(["c"]))
    got = data.read_clean(path)
    pd.testing.assert_frame_equal(got, pd.read_parquet(path))
    assert got["customer_id"].astype(str).tolist() == ["b", "a", "c"]

    # ids as text (customer_scores): made Python strings without pyarrow's deduplication, the frame pandas reads; ids
    # that pandas reads as its string dtype the plain way
    scores = pd.DataFrame({"customer_id": ["b", "a", None], "tier": ["VIP", "VIP", None], "clv": [1.0, 2.0, np.nan]})
    scores.attrs = {"as_of": "2024-01-01"}
    for frame in (scores, scores.astype({"customer_id": "string"})):
        frame.to_parquet(path, index=False)
        for columns in (None, ["customer_id"], ["clv", "customer_id"], ["tier"]):
            pd.testing.assert_frame_equal(data.read_clean(path, columns=columns), pd.read_parquet(path, columns=columns), check_exact=True)
    assert data.read_clean(path).attrs == {"as_of": "2024-01-01"}


def test_the_ledger_reconciled_part_by_part_is_the_whole_ledger_reconciled(demo_data):
    import pandas as pd

    from tierbook import clean, data

    stage, _ = demo_data
    ledger = pd.read_parquet(stage.run_dir / "data" / "ledger.parquet")
    assert set(ledger["table"]) == {"transactions", "customers", "survey", "experiment"}
    pd.testing.assert_frame_equal(stage.reconciliation, clean.reconcile(ledger), check_exact=True)
    pd.testing.assert_frame_equal(stage.reasons, data._reasons(ledger), check_exact=True)
    assert (stage.reconciliation["rows_read"] == stage.reconciliation[["rows_kept", "rows_merged", "rows_rejected"]].sum(axis=1)).all()
    # the lines' passenger columns went through a spill folder (clean.spill_passengers), removed once the lines were written
    lines = pd.read_parquet(stage.run_dir / "data" / "transactions.parquet")
    present = lines["quantity"].notna().groupby(lines["source"]).mean().to_dict()
    assert lines["quantity"].dtype == "float64" and sorted(present.values()) == [0.0, 1.0] and (lines["quantity"].dropna() > 0).all()
    assert not list(stage.run_dir.glob(".spill-*"))


def test_kept_lines_customer_codes_without_taking_them_are_those_of_the_taken_ids():
    import numpy as np
    import pandas as pd

    from tierbook.summary import codes_at, customer_codes, line_codes

    # ids as Arrow strings with gaps (rejected lines without an id), in one chunk and in two, non-ASCII ids sorted by
    # code point as customer_codes sorts them; only the kept rows' ids are categories
    rng = np.random.default_rng(7)
    for trial in range(200):
        values = pd.Series(pd.array(rng.choice(["b", "a", "é", "Z", "10", "9", "客", "aa", None], int(rng.integers(1, 80))).tolist(),
                                    dtype="string"))
        if trial % 3 == 0:
            values = pd.concat([values, values.iloc[::-1]], ignore_index=True)
        present = np.flatnonzero(values.notna().to_numpy())
        kept = np.sort(rng.choice(present, size=min(len(present), int(rng.integers(1, 30))), replace=False))
        codes, ids, _ = codes_at(*line_codes(values), kept)
        expected_codes, expected_ids = customer_codes(values.take(kept))
        assert codes.tolist() == expected_codes.tolist() and ids.tolist() == expected_ids.tolist()
    codes, ids, rank = codes_at(*line_codes(pd.Series(pd.array(["b", None, "a", "c", "b"], dtype="string"))), np.array([0, 3, 4]))
    assert ids.tolist() == ["b", "c"] and codes.tolist() == [0, 1, 0] and rank.tolist() == [-1, 0, 1]  # a unused


def test_the_stage_orders_are_the_orders_file_and_their_monthly_figures_those_of_the_text_ids(demo_data):
    """The page's orders are the file the sections read (customer ids a categorical of the sorted ids); the monthly
    figures counted by customer code equal those of the ids as text and of a plain groupby of Period months."""
    import numpy as np
    import pandas as pd

    from tierbook import data

    stage, _ = demo_data
    written = pd.read_parquet(stage.run_dir / "data" / "orders.parquet")
    pd.testing.assert_series_equal(stage.orders["customer_id"], written["customer_id"], check_exact=True)
    as_objects = stage.orders.assign(**{c: stage.orders[c].astype(object) for c in ("source", "channel", "store", "currency")})
    pd.testing.assert_frame_equal(as_objects, written, check_exact=True)  # the repeated text categorical in memory only
    orders = stage.orders.copy()
    orders.loc[orders.index[:40:3], "channel"] = None  # orders without a channel are left out
    as_text = orders.assign(customer_id=pd.array(orders["customer_id"].astype(object), dtype="string[pyarrow]"))
    as_text.loc[as_text.index[5:60:7], "customer_id"] = None  # nor counted as a customer
    for frame in (orders, as_text):
        got = data.monthly(frame)
        month = frame["order_date"].dt.to_period("M").dt.to_timestamp()
        plain = (frame.assign(month=month, channel=frame["channel"].astype(object)).groupby(["month", "channel"])
                 .agg(orders=("month", "size"), customers=("customer_id", "nunique"), revenue=("net_amount", "sum")).reset_index())
        pd.testing.assert_frame_equal(got, plain, check_exact=True)
        assert got["orders"].sum() == frame["channel"].notna().sum() and got["customers"].dtype == np.int64
