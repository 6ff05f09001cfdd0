"""The data stage on real data: UCI Online Retail (541,909 lines) mapped through params."""

import datetime as dt

import pytest

from tierbook.data import run_data_stage

from .conftest import params_and_run_dir

ONLINE_RETAIL = """
currency: GBP
paths:
  data: {data}
  data_root: {data}   # the shared datasets sit outside the project
sources:
  transactions:
    - name: online_retail
      path: online_retail.csv.gz
      columns:
        InvoiceNo: order_id
        StockCode: product_id
        Quantity: quantity
        InvoiceDate: order_date
        UnitPrice: unit_price
        CustomerID: customer_id
        Country: store
      date_format: "%Y-%m-%d %H:%M:%S"
      returns:
        - {{column: order_id, startswith: "C"}}
"""


@pytest.fixture(scope="module")
def online_retail(shared_data, tmp_path_factory):
    project = tmp_path_factory.mktemp("or")
    params, run_dir = params_and_run_dir(project, "online_retail", ONLINE_RETAIL.format(data=shared_data / "online_retail"))
    return run_data_stage(params, project, run_dir, today=dt.date(2026, 11, 1)), run_dir


@pytest.mark.realdata
def test_online_retail_reconciles_exactly(online_retail):
    stage, _ = online_retail
    recon = stage.reconciliation.iloc[0]
    # published: 541,909 lines; Σ Quantity × UnitPrice over all lines = 9,747,747.93 (REFERENCE_FIGURES.md)
    assert recon["rows_read"] == 541_909
    assert recon["amount_read"] == pytest.approx(9_747_747.93, abs=0.005)
    assert recon["rows_kept"] + recon["rows_merged"] + recon["rows_rejected"] == 541_909
    total = recon["amount_kept"] + recon["amount_merged"] + recon["amount_rejected"]
    assert total == pytest.approx(9_747_747.93, abs=0.005)
    assert bool(recon["balanced"])


@pytest.mark.realdata
def test_online_retail_rules_find_the_published_counts(online_retail):
    stage, run_dir = online_retail
    reasons = stage.reasons.set_index("reason")["rows"]
    # 135,080 lines without CustomerID (published), rejected first whatever else is wrong with them
    assert reasons["missing_customer_id"] == 135_080
    import pandas as pd

    ledger = pd.read_parquet(run_dir / "data/ledger.parquet")
    cancellations = ledger["order_id"].str.startswith("C")
    assert cancellations.sum() == 9_288  # published count of 'C' invoices
    # every cancellation with a customer id is netted, rejected with its order, has no earlier order,
    # or repeats an identical cancellation line
    with_customer = cancellations & ledger["customer_id"].notna()
    assert set(ledger.loc[with_customer, "reason"]) == {"return_netted", "fully_returned", "return_unmatched", "exact_duplicate"}
    # the outliers: the two extreme lines (80,995 and 74,215 units, both cancelled) and the 'M' manual
    # line at the published maximum UnitPrice of 38,970
    outliers = ledger[ledger["reason"] == "outlier"]
    assert sorted(outliers["amount"].round(2)) == [38_970.0, 77_183.6, 168_469.6]
    # 4,339 customers have a non-'C' line with positive quantity (397,924 lines: the counts RFM tutorials
    # on this data report); the clean orders keep those whose orders were not all returned
    raw = pd.read_csv(stage.inventory.loc[0, 'path'], dtype={"CustomerID": "string", "InvoiceNo": "string"})
    buyers = raw[~raw["InvoiceNo"].str.startswith("C") & (raw["Quantity"] > 0)]["CustomerID"].dropna()
    assert (len(buyers), buyers.nunique()) == (397_924, 4_339)
    kept_customers = set(stage.orders["customer_id"])
    assert kept_customers <= set(buyers)
    lost = set(buyers) - kept_customers
    lost_reasons = set(ledger.loc[ledger["customer_id"].isin(lost) & ~cancellations, "reason"])
    assert lost and lost_reasons <= {"fully_returned", "outlier", "exact_duplicate", "non_positive_amount"}
    assert (stage.orders["net_amount"] > 0).all()
    assert stage.orders["net_amount"].sum() == pytest.approx(
        ledger.loc[ledger["status"] == "kept", "amount"].sum() + ledger.loc[ledger["reason"] == "return_netted", "amount"].sum())
