"""Property-based: whatever the rows, every row is accounted for and the amounts reconcile."""

import datetime as dt

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from tierbook.clean import check_reconciliation, clean_transactions, reconcile
from tierbook.params import Clean

from .test_clean import frame

row = st.fixed_dictionaries({
    "customer_id": st.sampled_from(["A", "B", "C", None]),
    "order_id": st.sampled_from(["1", "2", "3", "4"]),
    "order_date": st.sampled_from(["2025-01-01", "2025-01-01 10:00", "2025-02-01", "2030-01-01", None]),
    "amount": st.one_of(st.none(), st.sampled_from([-50.0, -10.0, 0.0, 0.01, 10.0, 99.99, 1e6])),
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
