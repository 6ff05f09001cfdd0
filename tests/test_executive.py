"""The executive summary: KPIs from the sections' tables, deltas against the previous run, findings
ranked by size, both languages."""

import json

import pandas as pd
import pytest

from tierbook import executive
from tierbook.params import load_params

from .conftest import REPO


@pytest.fixture
def params():
    return load_params("demo", REPO / "params")


def _run(tmp_path, name: str, tiers: pd.DataFrame, churn: pd.DataFrame | None = None, status: str = "succeeded") -> object:
    run = tmp_path / "reports" / "acme" / name
    (run / "tables").mkdir(parents=True)
    tiers.to_csv(run / "tables" / "tiers.csv", index=False, encoding="utf-8-sig")
    if churn is not None:
        churn.to_csv(run / "tables" / "churn_by_tier.csv", index=False, encoding="utf-8-sig")
    (run / "manifest.json").write_text(json.dumps({"status": status}), encoding="utf-8")
    return run


TIERS = pd.DataFrame({"tier": ["VIP", "Regular", "Potential"], "customers": [50, 450, 500], "customer_share": [0.05, 0.45, 0.5],
                      "revenue": [400.0, 500.0, 100.0], "revenue_share": [0.4, 0.5, 0.1],
                      "action": ["专属优惠和增值服务: exclusive offers", "定期促销: promotions", "引导: nurture"]})
CHURN = pd.DataFrame({"tier": ["VIP", "Regular", "Potential"], "customers": [50, 450, 500], "churned": [5, 90, 400],
                      "churn_rate": [0.1, 0.2, 0.8]})


def test_kpis_cards_and_findings_from_hand_made_tables(tmp_path, params):
    run = _run(tmp_path, "20260101-000000-000", TIERS, CHURN)
    k = executive.collect_kpis(run)
    assert k["customers"] == 1000 and k["active_customers"] == 505 and k["churn_rate"] == pytest.approx(0.495)
    assert k["tier.VIP.revenue_share"] == 0.4
    cards = {c.label: c for c in executive.build_cards(k, None, params)}
    assert cards["Customers"].value == "1,000" and cards["Churned"].value == "49.5%" and cards["Churned"].delta == ""
    # a narrow interval (many answers) in the card's and the finding's decimals, not as "-9 … -9"
    narrow = {"nps": -9.04, "nps_lower": -9.4, "nps_upper": -8.6, "n_nps": 180_000}
    card = next(c for c in executive.build_cards(narrow, None, params) if c.label == "NPS")
    assert (card.value, card.detail) == ("-9.0", "-9.4 … -8.6, n = 180,000")
    findings = executive.build_findings(k, run, params, None)
    # ranked by size: the VIP concentration 0.4 / 0.05 = 8.0 before the churn spread 10 x (0.8 - 0.1) = 7.0
    assert findings[0] == "VIP customers are 5% of customers and bring 40% of net revenue (8.0× their share)."
    assert findings[1] == "50% of customers have churned: 10% in VIP against 80% in Potential."


def test_deltas_against_the_previous_successful_run_and_tier_moves(tmp_path, params):
    first = _run(tmp_path, "20260101-000000-000", TIERS, CHURN)
    _run(tmp_path, "20260102-000000-000", TIERS, CHURN, status="failed")  # never a baseline
    (first / "kpis.json").write_text(json.dumps(executive.collect_kpis(first)), encoding="utf-8")
    failed = tmp_path / "reports" / "acme" / "20260102-000000-000"
    (failed / "kpis.json").write_text(json.dumps({"customers": 1}), encoding="utf-8")
    better = CHURN.assign(churned=[5, 45, 300])
    second = _run(tmp_path, "20260201-000000-000", TIERS.assign(customers=[60, 440, 500]), better)
    (first / "data").mkdir()
    (second / "data").mkdir()
    pd.DataFrame({"customer_id": ["a", "b", "c"], "tier": ["Regular", "VIP", "Potential"]}).to_parquet(first / "data/customer_scores.parquet")
    pd.DataFrame({"customer_id": ["a", "b", "c", "d"], "tier": ["VIP", "Regular", "Potential", "VIP"]}).to_parquet(
        second / "data/customer_scores.parquet")
    stage = executive.run_summary_stage(params, second)
    assert stage.previous_date == "2026-01-01 00:00" and stage.previous["customers"] == 1000
    cards = {c.label: c for c in stage.cards}
    assert cards["Churned"].value == "35.0%" and cards["Churned"].delta == "-14.5 pp" and cards["Churned"].good is True
    assert cards["Active customers"].delta == "+28.7%"  # 650 against 505
    assert stage.moves == {"up": 1, "down": 1, "same": 1, "new": 1}
    assert "Churned changed from 49.5% to 35.0% since the previous run." in stage.findings
    assert json.loads((second / "kpis.json").read_text(encoding="utf-8"))["churn_rate"] == pytest.approx(0.35)
    html = executive.cards_html(stage)
    assert 'class="tb-delta tb-up">-14.5 pp vs previous run (2026-01-01 00:00)' in html


def test_chinese_summary_and_escaped_client_strings(tmp_path, params):
    zh = params.model_copy(update={"lang": "zh"})
    run = _run(tmp_path, "20260101-000000-000", TIERS, CHURN)
    stage = executive.run_summary_stage(zh, run)
    assert [c.label for c in stage.cards][:2] == ["客户数", "活跃客户"]
    assert stage.findings[0] == "VIP客户占客户的 5%，贡献 40% 的净销售额（是其客户占比的 8.0 倍）。"
    assert list(stage.actions["建议行动"]) == ["专属优惠和增值服务", "定期促销", "引导"]
    assert executive.compact_money(30_204_860, "CNY", "zh") == "¥3,020.5万" and executive.compact_money(30_204_860, "CNY", "en") == "¥30.2M"
    stage.cards[0].label = "<script>alert(1)</script>"
    assert "<script>" not in executive.cards_html(stage) and "&lt;script&gt;" in executive.cards_html(stage)


def test_customer_scores_files_are_what_pandas_and_the_frame_writer_write(tmp_path):
    # write_customer_scores makes the frame an Arrow table once for the Parquet file and the CSV: the same bytes as
    # to_parquet(index=False) (attrs included) and crm.write_csv of the frame
    import numpy as np
    import pyarrow as pa

    from tierbook import crm

    rng = np.random.default_rng(3)
    n = 500
    scores = pd.DataFrame({
        "customer_id": [f"C{i:05d}" for i in range(n)], "recency_days": rng.integers(1, 900, n),
        "monetary_total": np.round(rng.exponential(300, n), 2), "first_purchase": pd.to_datetime("2024-01-01") + pd.to_timedelta(rng.integers(0, 700, n), "D"),
        "segment_zh": rng.choice(["重要价值客户", "一般挽留客户", None], n), "tier": pd.array(rng.choice(["VIP", "Regular"], n), dtype="string"),
        "churned": rng.random(n) < 0.5, "churn_risk": np.where(rng.random(n) < 0.2, np.nan, rng.random(n)),
        "lifecycle_stage": rng.choice(["new", "lapsed", 'say "hi"'], n),
    })
    for attrs in ({}, {"as_of": "2026-01-01"}):
        scores.attrs = dict(attrs)
        run_dir = tmp_path / f"run{len(attrs)}"
        run_dir.mkdir()
        csv_path, xlsx_path = crm.write_customer_scores(scores, run_dir, export=True, xlsx_max_rows=10)
        # with min/max statistics for the dates and numbers only (data.statistics_columns)
        numbers = ["recency_days", "monetary_total", "first_purchase", "churned", "churn_risk"]
        assert crm.statistics_columns(pa.Table.from_pandas(scores, preserve_index=False).schema) == numbers
        scores.to_parquet(tmp_path / "pandas.parquet", index=False, write_statistics=numbers)
        crm.write_csv(scores, tmp_path / "frame.csv")
        assert (run_dir / "data" / "customer_scores.parquet").read_bytes() == (tmp_path / "pandas.parquet").read_bytes()
        assert csv_path.read_bytes() == (tmp_path / "frame.csv").read_bytes() and xlsx_path is None
        back = pd.read_parquet(run_dir / "data" / "customer_scores.parquet")
        assert back.attrs == attrs
        pd.testing.assert_frame_equal(back, pd.read_parquet(tmp_path / "pandas.parquet"), check_exact=True)
