import datetime as dt

import pandas as pd

from tierbook.clean import (
    clean_customers,
    clean_experiment,
    clean_survey,
    clean_transactions,
    reconcile,
)
from tierbook.params import Clean

TODAY = dt.date(2026, 1, 1)


def frame(rows, source="shop"):
    """Mapped transaction rows as ingest.map_source returns them."""
    df = pd.DataFrame(rows)
    df.insert(0, "source", source)
    df.insert(1, "row", range(1, len(df) + 1))
    df["order_date"] = pd.to_datetime(df["order_date"], format="mixed")
    df["customer_id"] = df["customer_id"].astype("string")
    df["amount"] = df["amount"].astype(float)
    for column in ("order_id", "original_order_id", "product_id"):
        if column in df:
            df[column] = df[column].astype("string")
    df["is_return"] = df["is_return"].eq(True) if "is_return" in df else False
    df["channel"], df["currency"] = source, "CNY"
    raw = df.drop(columns=["source", "row", "is_return", "channel", "currency"]).astype(str)
    df["row_hash"] = pd.util.hash_pandas_object(raw, index=False).to_numpy()
    return df


def run(tx, priority=("shop",), **rules):
    return clean_transactions(tx, Clean.model_validate(rules), list(priority), TODAY)


def reasons(result):
    return result.ledger.groupby("reason", observed=True).size().to_dict()


def test_exact_duplicates_per_source_name_the_first_open_row_with_the_same_text():
    """Two sources with interleaved repeats, and rows rejected before the rule (no customer id) that repeat a later row:
    each repeat names the first row of its own source still open, against a plain loop over the rows."""
    import numpy as np

    rng = np.random.default_rng(7)
    lines = []
    for i in range(300):
        lines.append({"source": ["shop", "app"][int(rng.integers(2))], "customer_id": None if rng.random() < 0.1 else "C",
                      "order_id": str(int(rng.integers(6))), "order_date": "2025-01-01", "amount": 10 + int(rng.integers(3))})
    tx = pd.concat([frame([{k: v for k, v in line.items() if k != "source"}], source=line["source"]) for line in lines],
                   ignore_index=True)
    tx["row"] = range(1, len(tx) + 1)
    tx["row_hash"] = pd.util.hash_pandas_object(tx[["customer_id", "order_id", "amount"]].astype(str), index=False).to_numpy()
    ledger = run(tx, priority=("shop", "app"), outliers={"method": "none"}, cross_source_duplicates={"enabled": False}).ledger
    seen, expected = {}, {}
    for line in tx.itertuples():
        if pd.isna(line.customer_id):
            continue
        key = (line.source, line.row_hash)
        if key in seen:
            expected[line.row] = f"identical to row {seen[key]}"
        else:
            seen[key] = line.row
    merged = ledger[ledger["reason"] == "exact_duplicate"]
    assert len(expected) > 200 and dict(zip(merged["row"], merged["detail"])) == expected


def test_each_rejection_rule_and_its_counts():
    tx = frame([
        {"customer_id": "A", "order_id": "1", "order_date": "2025-01-01", "amount": 10},
        {"customer_id": "A", "order_id": "2", "order_date": None, "amount": 10},  # unparseable date
        {"customer_id": "A", "order_id": "3", "order_date": "2025-01-02", "amount": None},  # unparseable amount
        {"customer_id": None, "order_id": "4", "order_date": "2025-01-02", "amount": 10},  # missing id
        {"customer_id": "B", "order_id": "5", "order_date": "2031-01-01", "amount": 10},  # future
        {"customer_id": "B", "order_id": "6", "order_date": "2023-12-31", "amount": 10},  # before window
        {"customer_id": "B", "order_id": "7", "order_date": "2025-03-01", "amount": 0},  # zero
        {"customer_id": "B", "order_id": "8", "order_date": "2025-03-01", "amount": -5},  # negative, not a return
        {"customer_id": "B", "order_id": "9", "order_date": "2025-03-02", "amount": 12},
    ])
    result = run(tx, window={"start": "2024-01-01"}, outliers={"method": "none"})
    assert reasons(result) == {"kept": 2, "unparseable_date": 1, "unparseable_amount": 1, "missing_customer_id": 1,
                               "future_date": 1, "outside_window": 1, "non_positive_amount": 2}
    assert result.orders["order_id"].tolist() == ["1", "9"]
    assert result.ledger.set_index("row").loc[5, "detail"] == "after 2026-01-01"


def test_exact_duplicates_are_merged_into_the_first_row():
    base = {"customer_id": "A", "order_id": "1", "order_date": "2025-01-01 10:00", "amount": 10, "product_id": "X"}
    tx = frame([base, {**base, "product_id": "Y"}, base, base])
    result = run(tx)
    ledger = result.ledger.set_index("row")
    assert ledger["reason"].tolist() == ["kept", "kept", "exact_duplicate", "exact_duplicate"]
    assert ledger.loc[3, "detail"] == "identical to row 1"
    assert result.orders["gross_amount"].tolist() == [20.0]  # one order of two distinct lines
    assert run(tx, exact_duplicates="keep").orders["gross_amount"].tolist() == [40.0]


def test_cross_source_duplicates_keep_the_higher_priority_source():
    online = frame([
        {"customer_id": "A", "order_id": "E1", "order_date": "2025-01-01 10:00:20", "amount": 99.5},
        {"customer_id": "A", "order_id": "E2", "order_date": "2025-01-05 10:00:00", "amount": 20},
    ], source="online")
    store = frame([
        {"customer_id": "A", "order_id": "P1", "order_date": "2025-01-01 10:00", "amount": 99.5},  # same as E1
        {"customer_id": "A", "order_id": "P2", "order_date": "2025-01-05 10:05", "amount": 20},  # 5 minutes off
        {"customer_id": "B", "order_id": "P3", "order_date": "2025-01-01 10:00", "amount": 99.5},  # other customer
    ], source="store")
    result = run(pd.concat([online, store], ignore_index=True), priority=("online", "store"))
    merged = result.ledger[result.ledger["reason"] == "cross_source_duplicate"]
    assert merged[["source", "order_id"]].values.tolist() == [["store", "P1"]]
    assert merged["detail"].tolist() == ["same order as online order E1"]
    assert sorted(result.orders["order_id"]) == ["E1", "E2", "P2", "P3"]
    reverse = run(pd.concat([online, store], ignore_index=True), priority=("store", "online"))
    assert reverse.ledger.loc[reverse.ledger["reason"] == "cross_source_duplicate", "order_id"].tolist() == ["E1"]


def test_returns_net_by_reference_then_product_then_latest_order():
    tx = frame([
        {"customer_id": "A", "order_id": "1", "order_date": "2025-01-01", "amount": 50, "product_id": "X"},
        {"customer_id": "A", "order_id": "1", "order_date": "2025-01-01", "amount": 30, "product_id": "Y"},
        {"customer_id": "A", "order_id": "2", "order_date": "2025-01-10", "amount": 40, "product_id": "Z"},
        # by reference to order 1 although order 2 is later
        {"customer_id": "A", "order_id": "R1", "order_date": "2025-01-12", "amount": -30, "is_return": True, "original_order_id": "1"},
        # by product: Y was bought in order 1
        {"customer_id": "A", "order_id": "R2", "order_date": "2025-01-12", "amount": -5, "is_return": True, "product_id": "Y"},
        # no reference, unknown product: the latest earlier order (2)
        {"customer_id": "A", "order_id": "R3", "order_date": "2025-01-12", "amount": -10, "is_return": True, "product_id": "Q"},
        # nothing earlier for this customer
        {"customer_id": "B", "order_id": "R4", "order_date": "2025-01-12", "amount": -10, "is_return": True},
    ])
    result = run(tx, outliers={"method": "none"})
    orders = result.orders.set_index("order_id")
    assert orders.loc["1", ["gross_amount", "returned_amount", "net_amount"]].tolist() == [80.0, -35.0, 45.0]
    assert orders.loc["2", ["gross_amount", "returned_amount", "net_amount"]].tolist() == [40.0, -10.0, 30.0]
    assert reasons(result) == {"kept": 3, "return_netted": 3, "return_unmatched": 1}
    assert result.ledger.set_index("order_id").loc["R3", "detail"] == "order 2"


def test_a_fully_returned_order_is_rejected_with_its_return():
    tx = frame([
        {"customer_id": "A", "order_id": "1", "order_date": "2025-01-01", "amount": 25},
        {"customer_id": "A", "order_id": "C1", "order_date": "2025-01-03", "amount": -25, "is_return": True},
        {"customer_id": "A", "order_id": "2", "order_date": "2025-01-05", "amount": 60},
        {"customer_id": "A", "order_id": "C2", "order_date": "2025-01-04", "amount": 10, "is_return": True},
    ])
    result = run(tx)
    assert reasons(result) == {"kept": 1, "fully_returned": 2, "return_not_negative": 1}
    assert result.orders["order_id"].tolist() == ["2"]


def test_the_orders_customers_are_a_categorical_of_the_customers_with_a_kept_order():
    # B's only line is rejected (outside the window), C's order fully returned: neither is a category
    tx = frame([
        {"customer_id": "C10", "order_id": "1", "order_date": "2025-01-02", "amount": 20},
        {"customer_id": "B", "order_id": "2", "order_date": "2019-01-01", "amount": 30},
        {"customer_id": "C", "order_id": "3", "order_date": "2025-01-03", "amount": 15},
        {"customer_id": "C", "order_id": "R3", "order_date": "2025-01-04", "amount": -15, "is_return": True, "original_order_id": "3"},
        {"customer_id": "C9", "order_id": "4", "order_date": "2025-01-01", "amount": 40},
        {"customer_id": "C10", "order_id": "5", "order_date": "2025-01-05", "amount": 10},
    ])
    result = run(tx, outliers={"method": "none"}, window={"start": "2020-01-01"})
    customers = result.orders["customer_id"]
    assert isinstance(customers.dtype, pd.CategoricalDtype)
    assert customers.cat.categories.tolist() == ["C10", "C9"]  # as text sorts them
    assert result.orders["order_id"].tolist() == ["4", "1", "5"]  # by date
    assert customers.astype(str).tolist() == ["C9", "C10", "C10"]
    assert customers.cat.codes.tolist() == [1, 0, 0]


def test_outliers_by_robust_z_of_log_amount():
    rows = [{"customer_id": f"C{i}", "order_id": str(i), "order_date": "2025-01-01", "amount": 100 + (i % 7) * 10} for i in range(200)]
    rows.append({"customer_id": "Z", "order_id": "big", "order_date": "2025-01-01", "amount": 999_999})
    result = run(frame(rows))
    assert result.ledger.loc[result.ledger["reason"] == "outlier", "order_id"].tolist() == ["big"]
    # 160 (every 7th customer) and the big one are above 150
    assert run(frame(rows), outliers={"method": "max_amount", "threshold": 150}).ledger["reason"].eq("outlier").sum() == 28 + 1


def test_reconciliation_balances_rows_and_amounts():
    tx = frame([
        {"customer_id": "A", "order_id": "1", "order_date": "2025-01-01", "amount": 25},
        {"customer_id": "A", "order_id": "1", "order_date": "2025-01-01", "amount": 25},
        {"customer_id": "A", "order_id": "C1", "order_date": "2025-01-03", "amount": -5, "is_return": True},
        {"customer_id": None, "order_id": "3", "order_date": "2025-01-03", "amount": 7},
    ])
    result = run(tx)
    recon = reconcile(result.ledger).iloc[0]
    assert recon[["rows_read", "rows_kept", "rows_merged", "rows_rejected"]].tolist() == [4, 1, 2, 1]
    assert recon[["amount_read", "amount_kept", "amount_merged", "amount_rejected"]].tolist() == [52.0, 25.0, 20.0, 7.0]
    assert bool(recon["balanced"])
    assert result.orders["net_amount"].sum() == 20.0  # kept 25 + netted return -5


def test_customers_survey_experiment_rules():
    customers = pd.DataFrame({"source": "m", "row": [1, 2, 3, 4], "customer_id": pd.array(["A", "A", "B", None], dtype="string"),
                              "region": ["东", "东", "西", "西"]})
    kept, ledger = clean_customers(pd.concat([customers, customers.iloc[[2]].assign(row=5, region="北")]))
    assert ledger["reason"].tolist() == ["kept", "exact_duplicate", "kept", "missing_customer_id", "duplicate_customer_id"]
    assert kept["region"].tolist() == ["东", "西"]

    survey = pd.DataFrame({"source": "s", "row": range(1, 6), "customer_id": list("ABCDE"),
                           "response_date": pd.to_datetime(["2025-01-01", None, "2025-01-01", "2025-01-01", "2025-01-01"]),
                           "nps": [10, 5, None, 11, 3], "csat": [5, 4, None, 4, None]})
    kept, ledger = clean_survey(survey, TODAY)
    assert ledger["reason"].tolist() == ["kept", "unparseable_date", "no_score", "score_out_of_range", "kept"]
    assert kept["nps"].tolist() == [10, 3]

    experiment = pd.DataFrame({"source": "e", "row": range(1, 6), "customer_id": ["A", "A", "B", "B", "C"],
                               "variant": ["t", "t", "t", "c", None]})
    kept, ledger = clean_experiment(experiment)
    assert ledger["reason"].tolist() == ["kept", "exact_duplicate", "several_variants", "several_variants", "missing_variant"]
    assert kept["customer_id"].tolist() == ["A"]


def test_repeated_text_as_categories_clean_as_text_does():
    """The data stage hands cleaning the source, channel, currency, store and category as categoricals
    (ingest.REPEATED_TEXT): the same statuses, orders and clean lines as text, with the text back in the lines and the
    reconciliation. The orders hold them as categoricals of the values they hold, sorted (as astype("category") sorts
    text), whatever the categories' order and unused ones."""
    online = frame([
        {"customer_id": "A", "order_id": "E1", "order_date": "2025-01-01 10:00:20", "amount": 99.5},
        {"customer_id": "A", "order_id": "E1", "order_date": "2025-01-01 10:00:20", "amount": 99.5},  # exact duplicate
        {"customer_id": "B", "order_id": "E2", "order_date": "2025-01-05 10:00:00", "amount": 20},
    ], source="online")
    store = frame([
        {"customer_id": "A", "order_id": "P1", "order_date": "2025-01-01 10:00", "amount": 99.5},  # same as E1
        {"customer_id": "B", "order_id": "P2", "order_date": "2025-01-06 10:05", "amount": 20, "product_id": "X"},
        {"customer_id": "B", "order_id": "R1", "order_date": "2025-01-07", "amount": -5, "is_return": True, "product_id": "X"},
        {"customer_id": None, "order_id": "P3", "order_date": "2025-01-07", "amount": 5},
    ], source="store")
    text = pd.concat([online, store], ignore_index=True)
    text["store"] = pd.Series(["天猫", "天猫", None, "徐汇店", "静安店", "静安店", "徐汇店"], dtype=object)
    text["category"] = pd.Series(["美妆", "美妆", "食品", "美妆", None, "食品", "食品"], dtype=object)
    as_text = run(text.copy(), priority=("online", "store"), outliers={"method": "none"})
    categories = text.astype({"source": pd.CategoricalDtype(["store", "unused", "online"]), "channel": "category", "currency": "category",
                              "store": pd.CategoricalDtype(["静安店", "天猫", "徐汇店", "unused"]), "category": "category"})
    as_categories = run(categories, priority=("online", "store"), outliers={"method": "none"})
    assert reasons(as_text) == {"kept": 3, "exact_duplicate": 1, "cross_source_duplicate": 1, "return_netted": 1, "missing_customer_id": 1}
    pd.testing.assert_frame_equal(as_categories.orders, as_text.orders)
    assert as_text.orders["source"].tolist() == ["online", "online", "store"]
    assert as_text.orders["source"].cat.categories.tolist() == ["online", "store"]
    for column in ("channel", "currency"):
        assert as_text.orders[column].astype(object).tolist() == text.loc[[0, 2, 4], column].tolist()
    stores = as_categories.orders["store"]
    assert stores.iloc[[0, 2]].tolist() == ["天猫", "静安店"] and pd.isna(stores.iloc[1])
    assert stores.cat.categories.tolist() == ["天猫", "静安店"]
    # the ledger's statuses and reasons: categoricals of the names used, in order of first use
    assert as_text.ledger["status"].cat.categories.tolist() == ["rejected", "merged", "kept"]
    assert as_text.ledger["table"].astype(object).eq("transactions").all()
    pd.testing.assert_frame_equal(as_categories.transactions, as_text.transactions)
    assert as_categories.transactions["source"].dtype == object
    category = as_categories.transactions["category"]
    assert category.iloc[:2].tolist() == ["美妆", "食品"] and pd.isna(category.iloc[2]) and category.dtype == object
    ledger = as_categories.ledger.astype({"source": object})
    pd.testing.assert_frame_equal(ledger, as_text.ledger)
    # by source as the data stage sorts it (a categorical's groups follow its categories' order)
    def by_source(ledger):
        return reconcile(ledger).sort_values(["table", "source"], ignore_index=True)

    pd.testing.assert_frame_equal(by_source(as_categories.ledger), by_source(as_text.ledger))


def test_spilled_passenger_columns_come_back_as_they_were(tmp_path):
    """The lines' numeric columns no rule reads, kept in files while cleaning runs (spill_dir), give the same clean lines
    as kept in memory: values at the kept rows (returns, duplicates and a rejected row dropped), dtypes, missing values."""
    import numpy as np

    rows = [{"customer_id": "C1", "order_id": "1", "order_date": "2025-01-02", "amount": 30, "quantity": 3, "unit_price": 10.0,
             "discount": None},
            {"customer_id": "C1", "order_id": "1", "order_date": "2025-01-02", "amount": 30, "quantity": 3, "unit_price": 10.0,
             "discount": None},
            {"customer_id": None, "order_id": "2", "order_date": "2025-01-03", "amount": 5, "quantity": 1, "unit_price": 5.0,
             "discount": 0.5},
            {"customer_id": "C2", "order_id": "3", "order_date": "2025-01-04", "amount": 12.5, "quantity": 2, "unit_price": 6.25,
             "discount": 1.25},
            {"customer_id": "C2", "order_id": "R3", "original_order_id": "3", "order_date": "2025-01-05", "amount": -6.25,
             "quantity": -1, "unit_price": 6.25, "discount": 0.0, "is_return": True},
            {"customer_id": "C3", "order_id": "4", "order_date": "2025-01-06", "amount": 7, "quantity": 1, "unit_price": 7.0,
             "discount": 0.0}]
    tx = frame(rows)
    tx["quantity"] = tx["quantity"].astype(np.int64)
    in_memory = run(tx.copy(), outliers={"method": "none"})
    spill = tmp_path / "spill"
    spill.mkdir()
    spilled = clean_transactions(tx.copy(), Clean.model_validate({"outliers": {"method": "none"}}), ["shop"], TODAY, spill_dir=spill)
    assert sorted(spilled.spilled) == ["discount", "quantity", "unit_price"]
    assert not {"discount", "quantity", "unit_price"} & set(spilled.lines.columns)
    assert sorted(p.name for p in spill.iterdir()) == ["discount.bin", "quantity.bin", "unit_price.bin"]
    expected = in_memory.transactions
    pd.testing.assert_frame_equal(spilled.transactions, expected)
    assert expected["quantity"].tolist() == [3, 2, 1] and expected["quantity"].dtype == np.int64
    assert expected["discount"].tolist()[1:] == [1.25, 0.0] and np.isnan(expected["discount"].iloc[0])
    pd.testing.assert_frame_equal(spilled.ledger, in_memory.ledger)
    pd.testing.assert_frame_equal(spilled.orders, in_memory.orders)
