import numpy as np
import pandas as pd
import pytest

from tierbook.errors import TierbookError
from tierbook.summary import COLUMNS, customer_summary, default_as_of, to_amount_units


def orders(rows):
    df = pd.DataFrame(rows, columns=["customer_id", "order_id", "order_date", "net_amount"])
    df["order_date"] = pd.to_datetime(df["order_date"])
    df["source"] = "shop"
    return df


ORDERS = orders([
    ("A", "1", "2024-01-01 09:00", 10.0),
    ("A", "2", "2024-01-01 18:00", 5.0),  # same day as order 1
    ("A", "3", "2024-01-15 12:00", 20.0),
    ("A", "4", "2024-02-12 12:00", 30.0),
    ("B", "5", "2024-02-20 10:00", 7.0),
    ("B", "6", "2024-03-01 10:00", 99.0),  # on as_of: excluded
])


def test_hand_computed_summary_by_day():
    s = customer_summary(ORDERS, "2024-03-01", occasion="day", time_unit="D").set_index("customer_id")
    assert list(s.reset_index().columns) == COLUMNS
    a, b = s.loc["A"], s.loc["B"]
    # A: occasions 2024-01-01 (15), 01-15 (20), 02-12 (30); as_of 2024-03-01 = day 60 of 2024
    assert (a["purchase_occasions"], a["monetary_total"], a["monetary_mean"]) == (3, 65.0, 65.0 / 3)
    assert (a["recency_days"], a["tenure_days"]) == (18, 60)
    assert (a["frequency"], a["recency"], a["T"], a["monetary_value"]) == (2, 42.0, 59.0, 25.0)
    assert a["first_purchase"] == pd.Timestamp("2024-01-01") and a["last_purchase"] == pd.Timestamp("2024-02-12")
    # B: one purchase (the order on as_of does not count)
    assert (b["purchase_occasions"], b["monetary_total"], b["recency_days"], b["frequency"], b["recency"], b["T"], b["monetary_value"]) == (
        1, 7.0, 10, 0, 0.0, 9.0, 0.0)


def test_by_order_and_time_units():
    s = customer_summary(ORDERS, "2024-03-01", occasion="order", time_unit="W").set_index("customer_id")
    a = s.loc["A"]
    assert (a["purchase_occasions"], a["frequency"], a["monetary_value"]) == (4, 3, 55.0 / 3)
    assert a["recency"] == pytest.approx(42 / 7) and a["T"] == pytest.approx(59 / 7)
    months = customer_summary(ORDERS, "2024-03-01", time_unit="M").set_index("customer_id")
    assert months.loc["A", "T"] == pytest.approx(59 / (365.25 / 12))
    assert s.attrs == {"as_of": "2024-03-01", "time_unit": "W", "occasion": "order"}


def test_default_as_of_is_the_day_after_the_last_order_and_input_is_untouched():
    before = ORDERS.copy()
    s = customer_summary(ORDERS)
    assert default_as_of(ORDERS) == pd.Timestamp("2024-03-02")
    assert s.set_index("customer_id").loc["B", "recency_days"] == 1
    pd.testing.assert_frame_equal(ORDERS, before)


def test_nothing_before_as_of_is_a_one_line_error():
    with pytest.raises(TierbookError, match=r"no order is before as_of 2023-01-01 \(data period 2024-01-01 to 2024-03-01\); set rfm.as_of"):
        customer_summary(ORDERS, "2023-01-01")


def test_reproduces_the_published_cdnow_calibration_summary(shared_data):
    """Hardie's CDNOW sample: x, t_x, T (weeks, calibration to 1997-09-30) and zbar for 2,357 customers."""
    raw = pd.read_csv(shared_data / "cdnow/CDNOW_sample.txt", sep=r"\s+", header=None, dtype=str,
                      names=["master_id", "customer_id", "date", "cds", "dollars"])
    cdnow = orders(list(zip(raw["customer_id"], raw.index.astype(str), pd.to_datetime(raw["date"], format="%Y%m%d"),
                            raw["dollars"].astype(float))))
    ours = customer_summary(cdnow, "1997-10-01", time_unit="W").set_index("customer_id")
    published = pd.read_csv(shared_data / "cdnow/cdnow_customers_summary_with_transactions.csv", dtype={"ID": str})
    published["ID"] = published["ID"].str.zfill(4)
    published = published.set_index("ID").reindex(ours.index)
    assert len(ours) == 2357 and published["x"].notna().all()
    assert (ours["frequency"] == published["x"]).all() and ours["frequency"].sum() == 2457
    assert np.abs(ours["recency"] - published["t_x"]).max() <= 0.005
    assert np.abs(ours["T"] - published["T"]).max() <= 0.005
    assert np.abs(ours["monetary_value"] - published["zbar"]).max() <= 0.005 + 1e-9  # published values are rounded to cents


def test_integer_ids_give_the_same_summary_as_their_strings():
    """Integer ids skip hashing (their own codes); the summary is the string-id one with int ids,
    sorted by number (10 before 9000000000, the largest within 2**40 of the smallest)."""
    numbered = ORDERS.assign(customer_id=ORDERS["customer_id"].map({"A": 9_000_000_000, "B": 10}))
    by_number = customer_summary(numbered, "2024-03-01", time_unit="D")
    assert by_number["customer_id"].tolist() == [10, 9_000_000_000]
    assert all(type(v) is int for v in by_number["customer_id"])  # Python ints, as factorized ids are
    by_name = customer_summary(ORDERS, "2024-03-01", time_unit="D").set_index("customer_id").loc[["B", "A"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(by_number.drop(columns="customer_id"), by_name)


def test_sums_are_integer_sums_divided_once():
    """Amounts are summed as int64 ten-thousandths: 10.10 + 5.20 is 15.3, not the float sum
    15.299999999999999, and the repeat value 25.175, not 25.175000000000004 (the float
    (65.65 - 15.3) / 2); DuckDB and Spark compute the same (tests/test_engine.py)."""
    cents = orders([("A", "1", "2024-01-01 09:00", 10.10), ("A", "2", "2024-01-01 18:00", 5.20),
                    ("A", "3", "2024-01-15 12:00", 20.00), ("A", "4", "2024-02-12 12:00", 30.35)])
    a = customer_summary(cents, "2024-03-01").iloc[0]
    assert (a["monetary_total"], a["monetary_mean"], a["monetary_value"]) == (65.65, 65.65 / 3, 25.175)
    assert customer_summary(cents, "2024-01-02")["monetary_total"].iloc[0] == 15.3
    assert to_amount_units(np.array([0.1, 118.61000000000001, 0.00016, 2.5e-5, -1.23])).tolist() == [1000, 1186100, 2, 0, -12300]


def test_customer_codes_sort_as_the_ids_do_and_unique_sorted_is_np_unique():
    from tierbook.summary import customer_codes, unique_sorted

    ids = ["b10", "a", "b9", "a", "中", "b10"]
    for series in (pd.Series(ids, dtype=object), pd.Series(ids, dtype="string[pyarrow]"),
                   pd.Series(pd.Categorical(ids, categories=["中", "b9", "b10", "a", "zz"]))):
        codes, names = customer_codes(series)
        assert list(names[codes]) == ids  # each row's id back
        assert list(np.argsort(codes, kind="stable")) == list(np.argsort(np.array(ids, dtype=object), kind="stable"))
    assert list(customer_codes(pd.Series(pd.Categorical(ids, categories=["中", "b9", "b10", "a", "zz"])))[1]) == ["a", "b10", "b9", "zz", "中"]
    values = np.random.default_rng(0).integers(-50, 50, 1000)
    assert np.array_equal(unique_sorted(values), np.unique(values)) and len(unique_sorted(values[:0])) == 0


@pytest.mark.parametrize("labels", [["a", "b", "c"], ["a", "b", "b"], ["b", "a", "c"], ["b", "a", "b"], ["a", None], ["10", "9"], []])
def test_known_unique_is_pandas_is_unique(labels):
    from tierbook.summary import known_unique

    assert known_unique(pd.Index(labels, dtype=object)) is pd.Index(labels, dtype=object).is_unique


def test_categorical_of_ids_is_from_codes_and_still_refuses_repeated_ids():
    from tierbook.summary import categorical_of_ids

    codes = np.array([2, 0, -1, 1, 2])
    for ids in (["c01", "c02", "c10"], ["c10", "c01", "c02"]):  # sorted (checked in one pass) and not (hashed)
        got = categorical_of_ids(codes, np.array(ids, dtype=object))
        want = pd.Categorical.from_codes(codes, categories=ids)
        assert got.categories.tolist() == ids and got.codes.tolist() == want.codes.tolist()
        assert got.astype(object).tolist() == want.astype(object).tolist()
    with pytest.raises(ValueError, match="unique"):
        categorical_of_ids(codes, np.array(["a", "b", "b"], dtype=object))
