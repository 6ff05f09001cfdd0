"""The clv section end to end: the published CDNOW validation through the pipeline, the demo's
planted truth, the small demo report, and data the models cannot support."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from tierbook.data import run_data_stage
from tierbook.errors import TierbookError
from tierbook.params import load_params
from tierbook.privacy import client_key, pseudonymise
from tierbook.segmentation import run_rfm_stage
from tierbook.valuation import run_clv_stage

from .conftest import REPO, params_and_run_dir

CDNOW_SAMPLE = """
currency: USD
paths:
  data: {data}
  data_root: {data}   # the shared datasets sit outside the project
sources:
  transactions:
    - name: cdnow
      path: cdnow_sample.txt
      delimiter: "\\\\s+"
      columns: {{customer_id: customer_id, date: order_date, dollars: amount, cds: quantity}}
      date_format: "%Y%m%d"
clean:
  zero_amount_sales: keep
rfm:
  as_of: 1998-07-01
clv:
  time_unit: W
  holdout_days: 273
"""


@pytest.fixture(scope="module")
def cdnow_stage(shared_data, tmp_path_factory):
    """The CDNOW 1/10 sample through the data, rfm and clv stages: as_of 1998-07-01 with a 273-day
    (39-week) holdout puts the calibration end at 1997-10-01, as in Fader, Hardie & Lee (2005)."""
    root = tmp_path_factory.mktemp("cdnow")
    raw = root / "raw"
    raw.mkdir()
    text = (shared_data / "cdnow/CDNOW_sample.txt").read_text()
    (raw / "cdnow_sample.txt").write_text("master_id customer_id date cds dollars\n" + text)  # the file has no header
    params, run_dir = params_and_run_dir(root, "cdnow", CDNOW_SAMPLE.format(data=raw))
    run_data_stage(params, root, run_dir, today=dt.date(2026, 1, 1))
    run_rfm_stage(params, run_dir)
    return run_clv_stage(params, run_dir), run_dir


@pytest.mark.realdata
def test_cdnow_through_the_pipeline_reproduces_the_published_validation(cdnow_stage):
    stage, _ = cdnow_stage
    v = stage.validation
    assert stage.ok and len(v.calibration) == 2357
    p = v.bg.params_
    assert (round(p["r"], 3), round(p["alpha"], 3), round(p["a"], 3), round(p["b"], 3)) == (0.243, 4.414, 0.793, 2.426)
    m = v.metrics.set_index("model")
    assert m.loc["BG/NBD", "log_likelihood"] == pytest.approx(-9582.4, abs=0.05)
    assert m.loc["Pareto/NBD", "log_likelihood"] == pytest.approx(-9595.0, abs=0.05)
    assert m.loc["BG/NBD", "actual"] == 1882  # repeat purchases in weeks 40-78
    assert round(m.loc["BG/NBD", "correlation"], 3) == 0.626 and round(m.loc["Pareto/NBD", "correlation"], 3) == 0.630
    assert m.loc["BG/NBD", "mae"] < m.loc["naive (calibration rate)", "mae"]
    # the histogram fit: chi-square(3) = 4.82, p = 0.19 (0..6 and 7+ repeat purchases)
    assert v.chi2_df == 3 and round(v.chi2, 2) == 4.82 and round(v.chi2_p, 2) == 0.19
    assert v.histogram["observed"].tolist()[:2] == [1411, 439]
    # cumulative tracking: 2,457 repeat purchases in weeks 1-39; BG/NBD under-forecasts week 78 by 4%
    track = v.tracking.set_index("week_end")
    assert track.loc["1997-10-01", "actual"] == 2457
    assert track["expected"].iloc[-1] / track["actual"].iloc[-1] - 1 == pytest.approx(-0.04, abs=0.005)


@pytest.mark.realdata
def test_cdnow_customer_scores_get_the_value_columns(cdnow_stage):
    stage, run_dir = cdnow_stage
    scores = pd.read_parquet(run_dir / "data" / "customer_scores.parquet")  # the CRM files come with the profile section
    assert len(scores) == 2357 and {"p_alive", "expected_purchases", "expected_spend", "clv", "tier"} <= set(scores.columns)
    assert scores["clv"].sum() == pytest.approx(stage.by_tier["clv"].sum(), abs=0.005 * len(scores))  # rounded to cents
    assert stage.by_tier["customers"].sum() == 2357 and stage.by_tier["clv_share"].sum() == pytest.approx(1.0)
    # customer 0001 (x = 2 repeat occasions, last on 1997-08-02 ...): P(alive) and CLV recomputed by hand
    one = stage.customers.set_index("customer_id").loc["0001"]
    bg = stage.fit.bg
    assert one["p_alive"] == pytest.approx(bg.p_alive(one["frequency"], one["recency"], one["T"])[()])
    weekly = (1.10 ** (1 / 52.17857) - 1)
    steps = np.diff(np.r_[0, [bg.conditional_expected_purchases(k, one["frequency"], one["recency"], one["T"]) for k in range(1, 13)]])
    expected = 0.3 * one["expected_spend"] * (steps / (1 + weekly) ** np.arange(1, 13)).sum()
    assert one["clv"] == pytest.approx(expected, rel=1e-9)


def test_demo_truth_is_recovered_through_the_section(tmp_path):
    """On the demo's clean orders (returns netted, duplicates merged) the monthly BG/NBD fit lies
    within 3 standard errors of the generator's weekly truth converted to months, and P(alive)
    separates the customers who are truly alive at the end from those who dropped out."""
    from sklearn.metrics import roc_auc_score

    from tierbook import demo

    (tmp_path / "params").mkdir()
    for name in ("default.yaml", "demo.yaml"):
        (tmp_path / "params" / name).write_text((REPO / "params" / name).read_text(encoding="utf-8"), encoding="utf-8")
    params = load_params("demo", tmp_path / "params", ["demo.size=5000"])
    truth = demo.ensure(params.data_dir(tmp_path), params.demo.size, params.demo.seed)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    run_data_stage(params, tmp_path, run_dir, today=dt.date(2026, 1, 1))
    run_rfm_stage(params, run_dir)
    stage = run_clv_stage(params, run_dir)
    weeks_per_month = 365.25 / 12 / 7
    true = dict(truth["bgnbd"], alpha=truth["bgnbd"]["alpha"] / weeks_per_month)
    fit = stage.fit.bg
    for name in ("r", "alpha", "a", "b"):
        assert abs(fit.params_[name] - true[name]) < 3 * fit.standard_errors_[name], (name, fit.params_[name], true[name])
    members = pd.read_parquet(params.data_dir(tmp_path) / "truth_customers.parquet").set_index("customer_id")
    alive = members["alive_at_end"].reindex(stage.customers["customer_id"])
    repeaters = (stage.customers["frequency"] > 0).to_numpy()  # P(alive) is 1 by construction without a repeat purchase
    auc = roc_auc_score(alive[repeaters], stage.customers["p_alive"][repeaters])
    assert auc > 0.85
    m = stage.validation.metrics.set_index("model")
    assert abs(m.loc["BG/NBD", "error"]) < 0.05 and m.loc["BG/NBD", "mae"] < m.loc["naive (calibration rate)", "mae"]
    assert stage.validation.chi2_p > 0.01  # the process is BG/NBD: the histogram fits


@pytest.mark.slow
def test_the_demo_report_has_the_clv_section(demo_project):
    project, run = demo_project
    html = (run.run_dir / "clv.html").read_text(encoding="utf-8")
    assert "Customer lifetime value" in html and "Holdout" in html and "Traceback" not in html
    scores = pd.read_csv(run.run_dir / "customer_scores.csv", encoding="utf-8-sig", dtype={"customer_id": str})
    assert scores["p_alive"].between(0, 1).all() and (scores["clv"] >= 0).all() and scores["expected_purchases"].notna().all()
    shown = pseudonymise(scores.nlargest(3, "clv")["customer_id"], client_key(project.root, "demo", create=False))
    assert all(s in html for s in shown) and not any(c in html for c in scores.nlargest(3, "clv")["customer_id"])
    columns = pd.read_excel(run.run_dir / "customer_scores.xlsx", sheet_name="columns")
    assert list(columns["column"]) == list(scores.columns)


ONE_TIMERS = """
sources:
  transactions:
    - name: shop
      path: orders.csv
      columns: {{cid: customer_id, day: order_date, amt: amount}}
{extra}
"""


def _one_timer_run(root, extra=""):
    data = root / "data" / "shop"
    data.mkdir(parents=True)
    n = 150
    frame = pd.DataFrame({"cid": [f"c{i}" for i in range(n)], "day": pd.date_range("2025-01-01", periods=n, freq="D").strftime("%Y-%m-%d"),
                          "amt": np.linspace(10, 200, n).round(2)})
    frame = pd.concat([frame, frame.head(10).assign(day="2025-06-15")])  # only 10 repeat buyers
    frame.to_csv(data / "orders.csv", index=False)
    params, run_dir = params_and_run_dir(root, "shop", ONE_TIMERS.format(extra=extra))
    run_data_stage(params, root, run_dir, today=dt.date(2026, 1, 1))
    return params, run_dir


def test_data_without_enough_repeat_buyers_gets_a_plain_paragraph(tmp_path):
    params, run_dir = _one_timer_run(tmp_path)
    run_rfm_stage(params, run_dir)
    stage = run_clv_stage(params, run_dir)
    assert not stage.ok and stage.customers is None
    assert stage.problem == ("The CLV models cannot be used on this data: only 10 of 150 customers bought again with positive net spend; "
                             "the CLV models need at least 30 repeat buyers (clv.min_repeat_customers) to learn how often customers return.")
    assert "p_alive" not in pd.read_parquet(run_dir / "data/customer_scores.parquet").columns


def test_tiers_by_clv_cannot_silently_fall_back(tmp_path):
    params, run_dir = _one_timer_run(tmp_path, "tiers:\n  basis: clv")
    with pytest.raises(TierbookError, match=r"tiers.basis is clv but at 2025-06-16 only 10 of 150 customers .*use tiers.basis: monetary_total"):
        run_rfm_stage(params, run_dir)


def test_tiers_by_clv_rank_customers_by_predicted_value(tmp_path):
    """With ``tiers.basis: clv`` the top tier is exactly the top 5% by the clv section's CLV."""
    from tierbook import demo

    (tmp_path / "params").mkdir()
    for name in ("default.yaml", "demo.yaml"):
        (tmp_path / "params" / name).write_text((REPO / "params" / name).read_text(encoding="utf-8"), encoding="utf-8")
    params = load_params("demo", tmp_path / "params", ["demo.size=1000", "tiers.basis=clv"])
    demo.ensure(params.data_dir(tmp_path), params.demo.size, params.demo.seed)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    run_data_stage(params, tmp_path, run_dir, today=dt.date(2026, 1, 1))
    rfm = run_rfm_stage(params, run_dir)
    stage = run_clv_stage(params, run_dir)
    tiers = rfm.scores["tier"].set_axis(rfm.summary["customer_id"].astype(str))
    clv = stage.customers.set_index("customer_id")["clv"]
    top = set(clv.nlargest(int(np.ceil(0.05 * len(clv)))).index)
    assert set(tiers[tiers == "VIP"].index) == top
    assert np.trace(stage.clv_tiers.to_numpy()) == len(clv)  # tiers by CLV = tiers now


@pytest.mark.slow
def test_the_report_still_runs_when_the_models_cannot(project):
    """The clv page says why in one paragraph; the run succeeds and the other sections are whole."""
    from tierbook.report import Project, run_report

    _one_timer_run(project)  # writes data/shop/orders.csv and params/shop.yaml
    result = run_report(Project(project), "shop")
    assert result.status == "succeeded"
    html = (result.run_dir / "clv.html").read_text(encoding="utf-8")
    assert "only 10 of 150 customers bought again with positive net spend" in html and "Traceback" not in html
    assert "<img" not in html  # no empty figures


def test_a_summary_in_another_time_unit_is_the_summary_made_in_it():
    """``in_time_unit`` puts recency and T in another unit from the whole days, the same bits as the
    summary made in that unit; by hand: first purchase day 0, last day 10, as_of day 15 -> recency
    10 days = 10/7 weeks, T 14 days = 14/7 = 2 weeks (to the day before as_of)."""
    from tierbook.summary import customer_summary
    from tierbook.valuation import in_time_unit

    rng = np.random.default_rng(3)
    orders = pd.DataFrame({"customer_id": rng.choice([f"C{i:03d}" for i in range(300)], 2000),
                           "order_date": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 700, 2000), unit="D"),
                           "net_amount": rng.lognormal(4, 1, 2000).round(2)})
    weekly = customer_summary(orders, "2025-12-01", time_unit="W")
    for unit in ("D", "M", "Q", "W"):
        made = customer_summary(orders, "2025-12-01", time_unit=unit)
        converted = in_time_unit(weekly, unit)
        assert converted.equals(made) and converted.attrs == made.attrs, unit
        if unit != "W":
            assert not np.array_equal(converted["T"], weekly["T"])  # converted, not the weekly numbers
    by_hand = customer_summary(pd.DataFrame({"customer_id": ["A", "A"], "order_date": pd.to_datetime(["2025-01-01", "2025-01-11"]),
                                             "net_amount": [5.0, 7.0]}), "2025-01-16", time_unit="D")
    assert in_time_unit(by_hand, "W")[["frequency", "recency", "T"]].to_numpy().tolist() == [[1, 10 / 7, 2.0]]


def test_the_clv_section_takes_the_rfm_sections_summary_from_the_engine_once(tmp_path, monkeypatch):
    """The clv section reads the summary the rfm section had the engine compute (in rfm.time_unit) and
    puts it in clv.time_unit: equal, bit for bit, to the engine's summary in that unit. Without that
    file, with one of another as_of, or with one older than the run's orders, it asks the engine."""
    import os

    from tierbook import valuation
    from tierbook.engine import run_summary

    from .conftest import demo_files

    params, run_dir, _ = demo_files(tmp_path, 1000)
    assert params.rfm.time_unit != params.clv.time_unit  # W and M by default: the conversion is exercised
    run_data_stage(params, tmp_path, run_dir, today=dt.date(2026, 1, 1))
    rfm = run_rfm_stage(params, run_dir)
    engine = run_summary(params, run_dir, rfm.as_of, occasion=params.rfm.occasion, time_unit=params.clv.time_unit)
    asked = []
    monkeypatch.setattr(valuation, "run_summary", lambda *args, **kwargs: asked.append(args[2]) or engine)
    summary = valuation.section_summary(params, run_dir, rfm.as_of)
    assert summary.equals(engine) and summary.attrs == engine.attrs and asked == []
    stage = run_clv_stage(params, run_dir)
    assert stage.ok and stage.summary.equals(engine) and asked == []
    earlier = rfm.as_of - pd.Timedelta(days=30)
    valuation.section_summary(params, run_dir, earlier)  # the saved summary is for another as_of
    saved, orders = run_dir / "data/customer_summary.parquet", run_dir / "data/orders.parquet"
    os.utime(saved, (orders.stat().st_mtime - 10, orders.stat().st_mtime - 10))  # the orders were written again since
    valuation.section_summary(params, run_dir, rfm.as_of)
    saved.unlink()
    valuation.section_summary(params, run_dir, rfm.as_of)
    assert asked == [earlier, rfm.as_of, rfm.as_of]


def test_the_clv_distribution_is_drawn_the_same_from_the_two_columns(tmp_path):
    """``clv_points`` (CLV and the tier as a categorical) gives the figure of the whole customers frame
    with Arrow-text tiers, byte for byte, also with a tier without customers and with CLV of 0."""
    import io

    import matplotlib

    matplotlib.use("agg")
    import matplotlib.pyplot as plt

    from tierbook import plots
    from tierbook.valuation import CLVStage, clv_points

    rng = np.random.default_rng(5)
    n = 3000
    customers = pd.DataFrame({"customer_id": [f"C{i}" for i in range(n)], "frequency": rng.integers(0, 9, n),
                              "tier": pd.array(rng.choice(["Regular", "Potential"], n, p=[0.3, 0.7]), dtype="string"),
                              "clv": np.where(rng.random(n) < 0.1, 0.0, rng.lognormal(3, 1.5, n))})
    order = ["VIP", "Regular", "Potential"]  # no VIP
    stage = CLVStage(as_of=pd.Timestamp("2026-01-01"), summary=customers, problem=None, validation=None, validation_note=None,
                     fit=None, customers=customers, by_tier=None, by_segment=None, p_alive_bands=None, clv_tiers=None, tier_order=order)
    points = clv_points(stage)
    assert list(points.columns) == ["clv", "tier"] and points["clv"].equals(customers["clv"])
    assert list(points["tier"].cat.categories) == order and (points["tier"].astype(str) == customers["tier"]).all()
    images = []
    plots.set_theme()
    for frame in (customers, points):
        fig = plots.clv_distribution(frame, "CNY", order)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        plt.close(fig)
        images.append(buffer.getvalue())
    assert images[0] == images[1]


def test_value_columns_put_into_the_scores_file_give_the_file_written_through_pandas(tmp_path):
    """crm.update_customer_scores (the clv section's columns put into customer_scores on its Arrow table) reads back as
    the frame written by write_customer_scores after the pandas way: the file read, its value columns dropped, the new
    ones added at the end; the other columns (text with a missing value, attrs) as they were."""
    from tierbook.crm import update_customer_scores, write_customer_scores

    first = tmp_path / "a"
    second = tmp_path / "b"
    scores = pd.DataFrame({"customer_id": ["1", "2", "3"], "tier": ["VIP", None, "潜力客户"], "clv": [9.0, 8.0, 7.0],
                           "recency_days": [1, 2, 3]})
    scores.attrs = {"as_of": "2024-01-01"}
    for run_dir in (first, second):
        run_dir.mkdir()
        write_customer_scores(scores, run_dir, export=False)
    new = pd.DataFrame({"p_alive": [0.5, 0.25, 1.0], "clv": [1.5, np.nan, 3.25]})
    update_customer_scores(first, new)
    old = pd.read_parquet(second / "data" / "customer_scores.parquet")
    write_customer_scores(pd.concat([old.drop(columns=["clv"]), new], axis=1), second, export=False)
    got, want = (pd.read_parquet(d / "data" / "customer_scores.parquet") for d in (first, second))
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert list(got.columns) == ["customer_id", "tier", "recency_days", "p_alive", "clv"] and got["tier"].tolist() == ["VIP", None, "潜力客户"]
    assert got.attrs == {"as_of": "2024-01-01"} and got["clv"].isna().tolist() == [False, True, False]
    with pytest.raises(ValueError, match="2 rows for the 3"):
        update_customer_scores(first, new.head(2))
    with pytest.raises(ValueError, match="not documented"):
        update_customer_scores(first, pd.DataFrame({"nonsense": [1, 2, 3]}))
