"""Property-based: whatever the rows, every row is accounted for and the amounts reconcile."""

import datetime as dt

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tierbook.clean import check_reconciliation, clean_customers, clean_transactions, reconcile
from tierbook.errors import TierbookError
from tierbook.params import Clean

from .conftest import params_and_run_dir
from .test_clean import frame

row = st.fixed_dictionaries({
    "customer_id": st.sampled_from(["A", "B", "C", None]),
    "order_id": st.sampled_from(["1", "2", "3", "4"]),
    "order_date": st.sampled_from(["2025-01-01", "2025-01-01 10:00", "2025-02-01", "2030-01-01", "1900-01-01", None]),
    "amount": st.one_of(st.none(), st.sampled_from([-50.0, -10.0, 0.0, 0.01, 10.0, 99.99, 1e6, 1e12])),
    "is_return": st.booleans(),
    "product_id": st.sampled_from(["X", "Y", None]),
})


@settings(max_examples=80, deadline=None)
@given(st.lists(row, min_size=1, max_size=25), st.lists(row, max_size=10), st.booleans())
def test_every_row_is_accounted_for_and_amounts_reconcile(shop_rows, web_rows, merge_duplicates):
    tx = pd.concat([frame(shop_rows, "shop")] + ([frame(web_rows, "web")] if web_rows else []), ignore_index=True)
    rules = Clean.model_validate({"exact_duplicates": "merge" if merge_duplicates else "keep", "outliers": {"method": "log_mad"}})
    result = clean_transactions(tx, rules, ["shop", "web"], dt.date(2026, 1, 1))
    ledger = result.ledger
    assert len(ledger) == len(tx)
    assert ledger["status"].isin(["kept", "merged", "rejected"]).all()
    assert not ledger.duplicated(["source", "row"]).any()
    recon = reconcile(ledger)
    assert recon["balanced"].all()
    check_reconciliation(recon, result.orders, ledger, recon.set_index("source")["rows_read"].to_dict())
    assert (result.orders["net_amount"] > 0).all()
    kept = ledger[ledger["status"] == "kept"]
    assert sorted(zip(result.transactions["source"], result.transactions["row"])) == sorted(zip(kept["source"], kept["row"]))


member = st.fixed_dictionaries({"customer_id": st.sampled_from(["A", "B", "C", "D", None]), "region": st.sampled_from(["东", "西", None])})


@settings(max_examples=100, deadline=None, derandomize=True)
@given(st.lists(member, min_size=1, max_size=12), st.lists(member, max_size=6))
def test_every_customer_row_has_one_status_and_each_id_is_kept_once(first_rows, second_rows):
    parts = [pd.DataFrame(rows).assign(source=name, row=range(1, len(rows) + 1)) for name, rows in (("m1", first_rows), ("m2", second_rows)) if rows]
    customers = pd.concat(parts, ignore_index=True)[["source", "row", "customer_id", "region"]]
    customers["customer_id"] = customers["customer_id"].astype("string")
    try:
        kept, ledger = clean_customers(customers)
    except TierbookError as err:
        # only when more than half of one source's rows with an id repeat an earlier id with other values
        assert "not one row per customer" in str(err)
        return
    assert len(ledger) == len(customers) and not ledger.duplicated(["source", "row"]).any()
    assert ledger["status"].isin(["kept", "merged", "rejected"]).all()
    ids = customers["customer_id"].dropna()
    assert sorted(kept["customer_id"]) == sorted(ids.unique())  # every id once, none invented
    assert (ledger["status"] == "rejected").sum() == customers["customer_id"].isna().sum()
    assert (ledger["status"] == "merged").sum() == len(ids) - ids.nunique()
    repeats = ledger[ledger["reason"] == "duplicate_customer_id"].groupby("source").size()
    with_id = customers[customers["customer_id"].notna()].groupby("source").size()
    assert all(n <= 0.5 * with_id[source] for source, n in repeats.items())  # else the run stopped above


amount_text = st.one_of(
    st.integers(1, 10**7).map(lambda c: (c / 100, f"¥{c // 100:,}.{c % 100:02d}")),  # a parseable amount: (value, as written)
    st.integers(1, 10**7).map(lambda c: (c / 100, f"{c // 100}.{c % 100:02d}")),
    st.integers(1, 10**5).map(lambda c: (-c / 100, f"({c // 100:,}.{c % 100:02d})")),
    st.sampled_from([(None, ""), (None, "待定"), (None, "N/A")]),
)


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["C1", "C2", "C3", ""]), st.sampled_from(["2025-01-05", "2025/02/01 10:00", "1900-01-01",
                                                                                    "2099-01-01", "not a date"]),
                          amount_text, st.booleans()), min_size=1, max_size=20))
def test_from_the_file_every_row_is_accounted_for_and_amounts_reconcile(tmp_path_factory, rows):
    """Rows written to a CSV as an export has them (¥ and thousands, parentheses, text, blanks,
    placeholder and future dates, returns): the ledger has one row per line of the file, with the
    amount written, and balances."""
    from tierbook.ingest import read_all

    root = tmp_path_factory.mktemp("props")
    params, _ = params_and_run_dir(root, "acme", """
sources:
  transactions:
    - name: shop
      path: shop.csv
      columns: {客户ID: customer_id, 日期: order_date, 金额: amount, 类型: order_status}
      returns: [{column: order_status, equals: [退货]}]
""")
    (root / "data" / "acme").mkdir(parents=True)
    lines = ["客户ID,日期,金额,类型"] + [f'{cid},{day},"{written}",{"退货" if back else "销售"}' for cid, day, (_, written), back in rows]
    (root / "data" / "acme" / "shop.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    try:
        tables, inventory = read_all(params, root)
    except TierbookError as err:  # a column that is mostly text or mostly bad dates stops, as it should
        assert "parses for only" in str(err)
        return
    result = clean_transactions(tables["transactions"], params.clean, ["shop"], dt.date(2026, 1, 1))
    ledger = result.ledger
    assert ledger["row"].tolist() == list(range(1, len(rows) + 1)) == list(range(1, inventory[0]["rows"] + 1))
    written = [value for _, _, (value, _), _ in rows]
    assert [None if pd.isna(a) else round(a, 2) for a in ledger["amount"]] == written
    recon = reconcile(ledger)
    assert bool(recon["balanced"].all())
    # (reconcile shows no amounts for a source without one, as for the customers table)
    assert recon["amount_read"].fillna(0.0).iloc[0] == pytest.approx(sum(v for v in written if v is not None))
    check_reconciliation(recon, result.orders, ledger, {"shop": len(rows)})
    unparsed = ledger[ledger["reason"].isin(["unparseable_date", "unparseable_amount"])]
    assert unparsed["detail"].notna().all()  # the text that did not parse, for rejected.csv
