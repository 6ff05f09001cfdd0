"""Degenerate and hostile data in the analysis stages (issue 10): RFM scoring, CLV fitting,
satisfaction, churn and the A/B functions, on data a consultant did not produce.

Each case runs the sections' notebooks cell by cell in this process (``run_section``: the code
papermill runs, with the same parameters, every displayed table rendered to HTML and every figure
drawn) and reads what a stakeholder would read. Either the case is handled and the page says how
many customers or rows and what was done, in sentences generated from the numbers, or the section
stops with one ``TierbookError`` line naming the table or param, the problem and the fix (what the
report's failure summary shows, ``tierbook.report._one_line``). No page may show a traceback, an
exception name or NaN / inf as a number.

Then property-based tests (hypothesis, bounded example counts): RFM scores, segments and tiers on
any positive data with heavy ties; the CLV summary's invariants and the models' fit-or-say-why
outcome; the A/B effect functions on arms of any size. Two full reports end the file (``slow``).
"""

from __future__ import annotations

import ast
import datetime as dt
import html
import io
import json
import re
import shutil
import warnings
from contextlib import contextmanager
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from tierbook import abtest
from tierbook.clv import fit_bgnbd, fit_gamma_gamma, fit_pareto_nbd
from tierbook.data import run_data_stage
from tierbook.errors import TierbookError
from tierbook.params import load_params, params_to_dict
from tierbook.pipeline import SECTIONS
from tierbook.report import _one_line
from tierbook.segmentation import make_scorer, make_tiers, run_rfm_stage
from tierbook.summary import customer_summary
from tierbook.valuation import fit_values, run_clv_stage

from .conftest import REPO

TODAY = dt.date(2026, 6, 30)
NOTEBOOKS = {s.name: s.notebook for s in SECTIONS}
ANALYSIS = ("rfm", "clv", "satisfaction", "churn", "ab_test", "profile", "summary")  # in an order that respects depends_on

# What must never reach a page: a traceback, an exception's name, NaN or infinity printed as a number.
UNREADABLE = re.compile(r"Traceback|\b[A-Z]\w*(Error|Exception)\b|\bnan\b|\bNaN\b|\binf\b|-inf\b", re.IGNORECASE)

SURVEY = {"name": "survey", "path": "survey.csv", "date_format": "%Y-%m-%d",
          "columns": {"customer_id": "customer_id", "response_date": "response_date", "nps": "nps"}}
EXPERIMENT = {"name": "experiment", "path": "experiment.csv", "columns": {"customer_id": "customer_id", "variant": "variant"},
              "outcomes": {"revenue": "revenue", "converted": "converted"}}


# --------------------------------------------------------------------------- data


def bgnbd_orders(n: int = 300, seed: int = 0, start: str = "2024-01-01", days: int = 720) -> pd.DataFrame:
    """Orders of a small shop whose customers buy as BG/NBD assumes (seeded): purchase rate per day
    ~ Gamma(0.6, 1/40), drop-out after each purchase with p ~ Beta(1, 4), first purchase in the
    first year, spend ~ Gamma around each customer's own mean. 300 customers give ~1,200 orders on
    which BG/NBD and Gamma-Gamma converge and the holdout validation runs."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        rate, dropout, mean = rng.gamma(0.6, 1 / 40), rng.beta(1, 4), rng.gamma(4, 30)
        t = float(rng.uniform(0, 365))
        while t < days:
            day = pd.Timestamp(start) + pd.Timedelta(days=int(t))
            rows.append((f"C{i:04d}", f"{day:%Y-%m-%d}", round(float(rng.gamma(5, mean / 5)) + 1, 2)))
            if rng.random() < dropout:
                break
            t += rng.exponential(1 / rate)
    return pd.DataFrame(rows, columns=["customer_id", "order_date", "amount"])


def orders_of(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["customer_id", "order_date", "amount"])


def deep_merge(base: dict, more: dict) -> dict:
    out = dict(base)
    for key, value in more.items():
        out[key] = deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


class Client:
    """A project folder with one client (``edge``) whose exports are the given orders, survey and
    experiment, and a run folder in which the data stage has run (as ``make report`` would, with
    the merged params in the run's manifest for the notebooks)."""

    def __init__(self, root: Path, orders: pd.DataFrame, survey=None, experiment=None, params: dict | None = None):
        self.root = root
        (root / "params").mkdir(parents=True)
        shutil.copy(REPO / "params" / "default.yaml", root / "params" / "default.yaml")
        data = root / "data" / "edge"
        data.mkdir(parents=True)
        orders.assign(order_id=[f"o{i}" for i in range(len(orders))]).to_csv(data / "orders.csv", index=False)
        sources = {"transactions": [{"name": "shop", "path": "orders.csv", "date_format": "%Y-%m-%d",
                                     "columns": {c: c for c in ("customer_id", "order_date", "amount", "order_id")}}]}
        for name, table, source in (("survey", survey, SURVEY), ("experiment", experiment, EXPERIMENT)):
            if table is not None:
                (data / f"{name}.csv").write_text(table if isinstance(table, str) else table.to_csv(index=False), encoding="utf-8")
                sources[name] = source
        text = deep_merge({"sources": sources, "clean": {"max_date": f"{TODAY}"}, "clustering": {"k_max": 2}}, params or {})
        (root / "params" / "edge.yaml").write_text(yaml.safe_dump(text, allow_unicode=True), encoding="utf-8")
        self.params = load_params("edge", root / "params")
        self.run_dir = root / "reports" / "edge" / "20260630-120000-000"
        self.run_dir.mkdir(parents=True)
        manifest = {"params": params_to_dict(self.params), "status": "incomplete"}
        (self.run_dir / "manifest.json").write_text(json.dumps(manifest, default=str), encoding="utf-8")
        self.data = run_data_stage(self.params, root, self.run_dir, today=TODAY)

    def section(self, name: str) -> str:
        return run_section(name, self.root, self.run_dir)

    def sections(self, *names: str) -> dict[str, str]:
        return {name: self.section(name) for name in names}

    def scores(self) -> pd.DataFrame:
        return pd.read_parquet(self.run_dir / "data" / "customer_scores.parquet")  # the CRM files come with the profile section


@contextmanager
def _displayed(out: list[str]):
    """IPython's ``display`` collecting what a notebook shows: Markdown as its text, tables and HTML
    as their HTML (a Styler renders here, as it would into the page)."""
    import IPython.display

    def display(*objects, **_kwargs):
        for obj in objects:
            if hasattr(obj, "_repr_markdown_"):
                out.append(obj.data)
            elif hasattr(obj, "_repr_html_"):
                out.append(obj._repr_html_())
            else:
                out.append(repr(obj))

    original = IPython.display.display
    IPython.display.display = display
    try:
        yield
    finally:
        IPython.display.display = original


def run_section(name: str, root: Path, run_dir: Path) -> str:
    """Execute a section's notebook in this process, the parameters cell set as papermill sets it,
    a cell's last expression displayed as Jupyter displays it and every figure drawn; returns the
    page's text (markdown cells and displayed output, tags stripped). Raises what a cell raises."""
    import matplotlib.pyplot as plt

    nb = nbformat.read(REPO / "notebooks" / NOTEBOOKS[name], as_version=4)
    out: list[str] = []
    namespace: dict = {"__name__": "__main__"}
    with _displayed(out), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # stderr is not shown on the page (the HTML template drops it)
        try:
            for cell in nb.cells:
                if cell.cell_type == "markdown":
                    out.append(cell.source)
                    continue
                source = cell.source
                if "parameters" in cell.metadata.get("tags", []):
                    source = f"client = 'edge'\nrun_dir = {str(run_dir)!r}\nproject_root = {str(root)!r}"
                tree = ast.parse(source)
                last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
                exec(compile(tree, f"{name}.ipynb", "exec"), namespace)
                if last is not None:
                    value = eval(compile(ast.Expression(last.value), f"{name}.ipynb", "eval"), namespace)
                    if value is not None:
                        namespace["display"](value)
                for number in plt.get_fignums():  # drawn as the inline backend draws them
                    plt.figure(number).savefig(io.BytesIO(), format="png", dpi=20)
                plt.close("all")
        finally:
            plt.close("all")
    text = html.unescape(re.sub(r"<style.*?</style>|<!--.*?-->|</?[A-Za-z][^>]*>", " ", "\n".join(out), flags=re.S))  # not "p < 0.001"
    return re.sub(r"[ \t\u00a0\u2060]+", " ", text)


def readable(text: str) -> str:
    """The page text, asserted free of tracebacks, exception names and NaN / inf shown as numbers."""
    bad = UNREADABLE.search(text)
    assert bad is None, f"the page shows {bad.group(0)!r}: …{text[max(0, bad.start() - 200):bad.end() + 100]}…"
    return text


def one_line_stop(call) -> str:
    """Run ``call``, which must stop with a TierbookError; return the line the failure summary shows."""
    with pytest.raises(TierbookError) as caught:
        call()
    line = _one_line(caught.value)
    assert line == str(caught.value) and "\n" not in line
    return line


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """The BG/NBD shop through the data, rfm and clv stages once; cases that only add a survey, an
    experiment or change churn params copy its rfm and clv outputs (the same orders give the same
    scores) instead of running them again."""
    client = Client(tmp_path_factory.mktemp("shop"), bgnbd_orders())
    run_rfm_stage(client.params, client.run_dir)
    clv = run_clv_stage(client.params, client.run_dir)
    assert clv.ok, clv.problem
    return client


def shop_with(shop: Client, tmp_path: Path, **kwargs) -> Client:
    orders = pd.read_csv(shop.root / "data" / "edge" / "orders.csv", dtype={"customer_id": str}).drop(columns="order_id")
    client = Client(tmp_path, orders, **kwargs)
    for name in ("customer_scores.parquet", "customer_summary.parquet"):
        shutil.copy(shop.run_dir / "data" / name, client.run_dir / "data" / name)
    for table in (shop.run_dir / "tables").glob("*.csv"):
        if not (client.run_dir / "tables" / table.name).exists():
            shutil.copy(table, client.run_dir / "tables" / table.name)
    return client


# --------------------------------------------------------------------------- customers and orders


def test_a_single_customer(tmp_path):
    client = Client(tmp_path, orders_of([("solo", "2024-01-05", 100.0), ("solo", "2024-03-05", 50.0)]))
    pages = {name: readable(text) for name, text in client.sections("rfm", "clv", "churn", "profile", "summary").items()}
    assert ("As of 2024-03-06, **a single customer** has bought: the scores, segments and tiers below rank that customer against no one, "
            "so they carry no information.") in pages["rfm"]
    assert "Customers in a segment: 1 of 1." in pages["rfm"]
    scores = client.scores()
    assert len(scores) == 1 and scores.loc[0, ["r_score", "f_score", "m_score"]].tolist() == [1, 1, 1]
    assert scores.loc[0, "tier"] == "VIP" and scores.loc[0, "monetary_total"] == 150.0  # 5% of one customer is that customer
    assert ("The CLV models cannot be used on this data: only 1 customers bought before 2024-03-06; the CLV models need at least 100 "
            "(clv.min_customers).") in pages["clv"]
    assert ("Churn cannot be defined on this data: only 1 repeat purchases before 2024-03-06: too few to derive churn.churn_days from the "
            "time between purchases; set churn.churn_days.") in pages["churn"]
    assert "**1 customers** with a purchase before 2024-03-06 are profiled." in pages["profile"]
    assert "Lapsed means no purchase for 365 days here, because only 1 repeat purchases" in pages["profile"]
    assert "Customers 1 " in pages["summary"] and "Net revenue ¥150.00" in pages["summary"]


def test_two_customers(tmp_path):
    client = Client(tmp_path, orders_of([("a", "2024-01-05", 100.0), ("b", "2024-02-05", 30.0), ("b", "2024-05-05", 40.0)]))
    rfm = readable(client.section("rfm"))
    assert ("As of 2024-05-06, **2 customers** bought at least once; 50% of them only once (too few customers, or no net revenue, "
            "for a share of the top 20%).") in rfm
    # two distinct customers, two clusters of one: the silhouette is undefined and the page says so
    assert ("k-means on log R, F and M kept **2** clusters, the smallest number tried: the silhouette score that chooses the number "
            "needs more distinct customers than clusters.") in rfm
    assert "Silhouette by k: k=2: –" in rfm
    scores = client.scores().set_index("customer_id")
    # a (recency 122 days, 1 occasion, 100.00) against b (1 day, 2 occasions, 70.00): the better of two has half the
    # customers strictly worse, 1 + floor(5 x 1/2) = 3; the worse none, 1
    assert scores.loc["b", ["r_score", "f_score"]].tolist() == [3, 3] and scores.loc["a", ["r_score", "f_score"]].tolist() == [1, 1]
    assert scores.loc["a", "m_score"] == 3 and scores.loc["b", "m_score"] == 1
    # the top 5% of 2 customers is 1 customer, the top 50% is the same one: a is VIP, b is left for the last level
    assert scores.loc["a", "tier"] == "VIP" and scores.loc["b", "tier"] == "Potential"
    assert "only 2 customers bought before 2024-05-06" in readable(client.section("clv"))


def test_every_customer_bought_once(tmp_path):
    rng = np.random.default_rng(7)
    days = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 700, 300), unit="D")
    client = Client(tmp_path, orders_of([(f"c{i:03d}", f"{d:%Y-%m-%d}", float(rng.integers(10, 500))) for i, d in enumerate(days)]))
    rfm = readable(client.section("rfm"))
    assert "100% of them only once" in rfm and "have the same purchase occasions (1)" in rfm
    assert (client.scores()["f_score"] == 1).all()
    clv = readable(client.section("clv"))
    as_of = f"{days.max() + pd.Timedelta(days=1):%Y-%m-%d}"
    assert (f"The CLV models cannot be used on this data: only 0 of 300 customers bought again with positive net spend; the CLV models "
            f"need at least 30 repeat buyers (clv.min_repeat_customers) to learn how often customers return.") in clv
    assert "expected_purchases" not in client.scores()  # no value columns without a model
    # the models themselves say why, in one line, to an analyst calling them from a notebook
    summary = customer_summary(client.data.orders, as_of, time_unit="M")
    assert (summary["frequency"] == 0).all() and (summary["recency"] == 0).all()
    assert one_line_stop(lambda: fit_bgnbd(summary)) == ("BG/NBD: no customer made a repeat purchase; the model cannot be fitted on "
                                                          "this data")
    assert one_line_stop(lambda: fit_pareto_nbd(summary)) == ("Pareto/NBD: no customer made a repeat purchase; the model cannot be fitted "
                                                               "on this data")
    assert one_line_stop(lambda: fit_gamma_gamma(summary)) == ("Gamma-Gamma: fewer than 2 repeat customers with positive spend; the model "
                                                                "cannot be fitted")
    assert f"Churn cannot be defined on this data: only 0 repeat purchases before {as_of}" in readable(client.section("churn"))
    readable(client.section("profile"))
    readable(client.section("summary"))


def test_tiers_by_clv_on_data_the_models_cannot_fit_stop_the_section_with_one_line(tmp_path):
    client = Client(tmp_path, orders_of([(f"c{i:03d}", f"2024-{1 + i % 12:02d}-10", 50.0 + i) for i in range(120)]),
                    params={"tiers": {"basis": "clv"}})
    line = one_line_stop(lambda: client.section("rfm"))
    assert line == ("tiers.basis is clv but at 2024-12-11 only 0 of 120 customers bought again with positive net spend; the CLV models "
                    "need at least 30 repeat buyers (clv.min_repeat_customers) to learn how often customers return; use tiers.basis: "
                    "monetary_total")


def test_an_analysis_date_before_every_order_stops_with_one_line(tmp_path):
    client = Client(tmp_path, orders_of([("a", "2024-03-05", 10.0), ("b", "2024-04-05", 20.0)]), params={"rfm": {"as_of": "2024-01-01"}})
    for section in ("rfm", "clv"):  # the sections after rfm are skipped when it fails
        line = one_line_stop(lambda: client.section(section))
        assert line == "no order is before as_of 2024-01-01 (data period 2024-03-05 to 2024-04-05); set rfm.as_of to a later date"


def test_all_customers_identical(tmp_path):
    orders = orders_of([(f"c{i:02d}", day, 100.0) for i in range(50) for day in ("2024-01-05", "2024-06-05")])
    client = Client(tmp_path, orders)
    rfm = readable(client.section("rfm"))
    assert ("All 50 customers have the same days since the last purchase (1), purchase occasions (2), net spend (¥200.00): a score "
            "cannot rank customers who are equal, so every customer gets the same score on it (1) and counts as low against the "
            "reference in the 8 segments.") in rfm
    assert ("Customers with an equal tier basis (`monetary_total`) are never split between tiers, so **VIP** and the tiers above it "
            "hold 100.0% of customers for a top share of 5%.") in rfm
    assert "All customers have the same R, F and M values, so there is a single cluster." in rfm
    scores = client.scores()
    assert (scores[["r_score", "f_score", "m_score"]] == 1).all().all() and set(scores["tier"]) == {"VIP"}
    assert set(scores["segment_zh"]) == {"一般挽留客户"} and set(scores["named_segment"]) == {"Lost"}
    assert set(scores["cluster"]) == {1}
    churn = readable(client.section("churn"))
    assert ("As of 2024-06-06, **0.0% of the 50 customers have churned**; all of them are in one tier (VIP).") in churn
    assert "Nobody has churned by the analysis date, so the groups cannot differ in how long customers stay: no log-rank test." in churn
    assert ("No Cox model on this data: nobody has churned by the analysis date, and the model learns from churned customers.") in churn
    summary = readable(client.section("summary"))  # the bottom tier has no customer: no churn finding (it raised a KeyError)
    assert "Churned 0.0%" in summary and "of customers have churned:" not in summary


def test_the_whole_history_is_one_day(tmp_path):
    client = Client(tmp_path, orders_of([(f"c{i:02d}", "2024-06-05", float(10 + i)) for i in range(50)]))
    pages = {name: readable(text) for name, text in client.sections("rfm", "clv", "churn", "profile", "summary").items()}
    assert "All 50 customers have the same days since the last purchase (1), purchase occasions (1):" in pages["rfm"]
    assert "No orders before 2024-03-08: no migration to show." in pages["rfm"]
    assert "only 50 customers bought before 2024-06-06; the CLV models need at least 100 (clv.min_customers)" in pages["clv"]
    assert "Churn cannot be defined on this data: only 0 repeat purchases before 2024-06-06" in pages["churn"]
    assert "0% of customers are **lapsing** (0; 0% of revenue to date) and 0% have **lapsed**; 50 are new" in pages["profile"]


def test_an_extreme_outlier_is_rejected_by_default_and_named_when_kept(tmp_path):
    orders = bgnbd_orders()
    orders.loc[len(orders)] = ("C0000", "2025-03-01", 1e9)
    rejected = Client(tmp_path / "default", orders)
    ledger = pd.read_csv(rejected.run_dir / "rejected.csv", encoding="utf-8-sig")
    assert ledger["amount"].max() == 1e9 and (ledger.loc[ledger["amount"] == 1e9, "reason"] == "outlier").all()
    assert rejected.data.orders["net_amount"].max() < 1e4

    kept = Client(tmp_path / "kept", orders, params={"clean": {"outliers": {"method": "none"}}})
    spend = f"¥{orders.loc[orders['customer_id'] == 'C0000', 'amount'].sum():,.2f}"
    rfm = readable(kept.section("rfm"))
    assert f"**Warning:** one customer made 100% of all net revenue ({spend}); check that customer's orders for an outlier" in rfm
    clv = readable(kept.section("clv"))
    assert f"**Warning:** one customer holds 100% of the total CLV (net spend to date {spend})" in clv
    scores = kept.scores().set_index("customer_id")
    assert scores["clv"].idxmax() == "C0000" and np.isfinite(scores[["p_alive", "expected_purchases", "clv"]]).all().all()
    assert scores.loc["C0000", ["m_score", "tier"]].tolist() == [5, "VIP"]


# --------------------------------------------------------------------------- surveys


def test_a_survey_file_with_only_its_header_stops_before_the_run_with_one_line(shop, tmp_path):
    """A header-only export is a file to export again (ingest's rule for every source), named before
    any section runs: ``make check`` and ``make report`` stop at the same line."""
    from tierbook.ingest import check_sources

    with pytest.raises(TierbookError) as caught:
        shop_with(shop, tmp_path, survey="customer_id,response_date,nps\n")
    survey = tmp_path / "data" / "edge" / "survey.csv"
    line = f"{survey}: has a header but no data rows; export it again with its rows, or remove source 'survey' from params"
    assert _one_line(caught.value) == line
    assert one_line_stop(lambda: check_sources(load_params("edge", tmp_path / "params"), tmp_path)) == line


def test_a_survey_whose_answers_are_all_blank(shop, tmp_path):
    blank = pd.DataFrame({"customer_id": sorted(shop.data.orders["customer_id"].astype(str).unique())[:25],
                          "response_date": "2025-06-01", "nps": ""})
    client = shop_with(shop, tmp_path, survey=blank)
    assert len(client.data.tables["survey"]) == 0
    ledger = pd.read_parquet(client.run_dir / "data" / "ledger.parquet")
    survey_rows = ledger[ledger["table"] == "survey"]
    assert len(survey_rows) == 25 and set(survey_rows["reason"]) == {"no_score"}  # every row accounted for
    satisfaction = readable(client.section("satisfaction"))
    assert ("The survey has only 0 answers with an NPS or CSAT score, fewer than the 30 this section needs (satisfaction.min_responses) "
            "for estimates worth showing.") in satisfaction
    churn = readable(client.section("churn"))
    assert "There is no survey with NPS answers for this client, so churn is not linked to satisfaction here." in churn
    assert not (client.run_dir / "tables" / "satisfaction_overall.csv").exists()


def test_a_survey_of_promoters_only(shop, tmp_path):
    ids = sorted(shop.data.orders["customer_id"].astype(str).unique())[:60]
    client = shop_with(shop, tmp_path, survey=pd.DataFrame({"customer_id": ids, "response_date": "2025-06-01", "nps": [9, 10] * 30}))
    page = readable(client.section("satisfaction"))
    # 60 of 60 promoters: Wilson lower bound 0.9398 for the share, so NPS >= 100 x (2 x 0.9398 - 1) = 88
    assert "**NPS +100 (+88 to +100, n = 60)**, 95% interval: 100% promoters (9-10), 0% passives (7-8), 0% detractors (0-6)." in page
    assert ("Every NPS answer is a promoter, so the usual interval would have no width; the interval shown is the range of NPS that the "
            "95% Wilson interval of that share allows.") in page
    overall = pd.read_csv(client.run_dir / "tables" / "satisfaction_overall.csv", encoding="utf-8-sig").iloc[0]
    assert overall["nps"] == 100 and overall["nps_lower"] == pytest.approx(87.96, abs=0.01) and overall["nps_upper"] == 100
    readable(client.section("churn"))


def test_a_survey_whose_respondents_are_no_customers(shop, tmp_path):
    answers = pd.DataFrame({"customer_id": [f"X{i}" for i in range(40)], "response_date": "2025-05-01",
                            "nps": list(range(11)) * 3 + [10] * 7})
    client = shop_with(shop, tmp_path, survey=answers)
    page = readable(client.section("satisfaction"))
    assert ("The survey has **40 responses** from 40 customers (40 of them anonymous or from customers without a purchase before the "
            "analysis date; they count only in the overall figures).") in page
    assert ("No response matches a customer who bought before the analysis date, so there is no breakdown by tier, segment or value; "
            "check that the survey's customer ids are the transactions' customer ids.") in page
    # 13 promoters (9 and 10 three times, seven more 10s), 6 passives, 21 detractors (0-6 three times): NPS 100 x (13 - 21) / 40 = -20
    assert "**NPS -20 (" in page and "32% promoters (9-10), 15% passives (7-8), 52% detractors (0-6)" in page
    assert not (client.run_dir / "tables" / "satisfaction_by_tier.csv").exists()


# --------------------------------------------------------------------------- churn


def test_nobody_churned(shop, tmp_path):
    client = shop_with(shop, tmp_path, params={"churn": {"churn_days": 5000}})
    page = readable(client.section("churn"))
    assert "A customer counts as churned after **5000 days (churn.churn_days)**. As of 2025-12-20, **0.0% of the 300 customers" in page
    assert "Nobody has churned by the analysis date, so the groups cannot differ in how long customers stay: no log-rank test." in page
    assert "No Cox model on this data: nobody has churned by the analysis date, and the model learns from churned customers." in page
    scores = client.scores()
    assert not scores["churned"].any()


def test_everybody_churned_long_after_the_last_order(tmp_path):
    client = Client(tmp_path, bgnbd_orders(), params={"rfm": {"as_of": "2027-06-01"}})
    rfm = readable(client.section("rfm"))
    # nobody bought in the 365-day tier window: no one can be a top spender of it (they were all VIP before the fix)
    assert ("No customer has positive net spend in the 365 days before as_of (tiers.window_days), so no one is in a tier by top share "
            "of spend; set tiers.window_days: null or an rfm.as_of within the data.") in rfm
    assert set(client.scores()["tier"]) == {"Potential"}
    readable(client.section("clv"))
    churn = readable(client.section("churn"))
    assert "**100.0% of the 300 customers have churned**; all of them are in one tier (Potential)." in churn
    assert "All 300 customers are in one group (Potential), so there is nothing to compare: no log-rank test." in churn
    assert "No Cox model on this data: no factor (tier, NPS category, channel, region) differs between customers." in churn
    assert client.scores()["churned"].all()
    summary = readable(client.section("summary"))
    assert "Churned 100.0%" in summary and "bring" not in summary  # no concentration finding from a tier without revenue


# --------------------------------------------------------------------------- experiments


def experiment(ids, variants, revenue, converted, **more) -> pd.DataFrame:
    return pd.DataFrame({"customer_id": ids, "variant": variants, "revenue": revenue, "converted": converted, **more})


@pytest.fixture(scope="module")
def shop_ids(shop):
    return sorted(shop.data.orders["customer_id"].astype(str).unique())


def test_an_experiment_with_one_arm(shop, shop_ids, tmp_path):
    table = experiment(shop_ids[:100], "control", np.linspace(0, 99, 100), [0, 1] * 50)
    client = shop_with(shop, tmp_path, experiment=table)
    page = readable(client.section("ab_test"))
    assert "The experiment table has only the control arm (control); there is nothing to compare." in page
    assert len(client.data.tables["experiment"]) == 100 and not (client.run_dir / "tables" / "ab_effects.csv").exists()
    line = one_line_stop(lambda: abtest.evaluate(table, "revenue", control="control"))
    assert line == "experiment: only the control arm 'control' is present; an A/B test needs a treatment arm"


def test_one_customer_per_arm(shop, shop_ids, tmp_path):
    client = shop_with(shop, tmp_path, experiment=experiment(shop_ids[:2], ["control", "coupon"], [10.0, 20.0], [0, 1]))
    page = readable(client.section("ab_test"))
    assert "**Sample ratio:** control 1, coupon 1 — consistent with the planned split (χ² p = 1.000)" in page
    assert "**Overall, coupon vs control on revenue: inconclusive** — too few customers in an arm to test." in page
    assert ("No comparison has at least 30 customers (ab_test.min_n) in each arm, overall or in any stratum, so nothing is tested: the "
            "tables below show the arms' sizes and means only.") in page
    assert "No comparison has two customers or more in each arm, so there is no Bayesian view." in page
    assert "No comparison on revenue has enough customers in each arm to estimate its effect, so there is no ROI." in page
    effects = pd.read_csv(client.run_dir / "tables" / "ab_effects.csv", encoding="utf-8-sig")
    overall = effects[(effects["stratum"] == "all") & (effects["outcome"] == "revenue")].iloc[0]
    assert (overall["mean_control"], overall["mean_treatment"]) == (10.0, 20.0) and pd.isna(overall["p_value"])


@pytest.mark.parametrize("rate", [0, 1])
def test_an_arm_converting_nobody_or_everybody(shop, shop_ids, tmp_path, rate):
    # control converts at `rate`, coupon at 0.1 (5 of 50)
    converted = [rate if i % 2 == 0 else int(i % 20 == 1) for i in range(100)]
    client = shop_with(shop, tmp_path, experiment=experiment(shop_ids[:100], ["control", "coupon"] * 50, np.arange(100.0), converted),
                       params={"ab_test": {"primary": "converted", "strata": "none"}})
    page = readable(client.section("ab_test"))
    effects = pd.read_csv(client.run_dir / "tables" / "ab_effects.csv", encoding="utf-8-sig").set_index("outcome")
    row = effects.loc["converted"]
    assert (row["n_control"], row["n_treatment"]) == (50, 50) and row["mean_control"] == rate and row["mean_treatment"] == 0.1
    assert row["test"] == "two-proportion z (Newcombe interval)" and row["ci_low"] < row["difference"] < row["ci_high"]
    # Newcombe (1998) method 10 from the Wilson intervals: 5/50 -> (0.04348, 0.21360), 0/50 -> (0, 0.07141), 50/50 -> (0.92859, 1)
    if rate == 0:
        # 0.1 - sqrt(0.05652^2 + 0.07141^2) = 0.0090, 0.1 + sqrt(0.11360^2 + 0^2) = 0.2136 (Wald gave 0.0168 to 0.1832)
        assert row["difference"] == pytest.approx(0.1) and (row["ci_low"], row["ci_high"]) == pytest.approx((0.008975, 0.213602), abs=1e-6)
        assert pd.isna(row["relative_lift"])  # no lift over a rate of 0
    else:
        # -0.9 - sqrt(0.05652^2 + 0^2) = -0.9565, -0.9 + sqrt(0.11360^2 + 0.07141^2) = -0.7658
        assert row["difference"] == pytest.approx(-0.9)
        assert (row["ci_low"], row["ci_high"]) == pytest.approx((-0.956524, -0.765851), abs=1e-6)
        assert "**Overall, coupon vs control on converted: don't ship** — it hurts: -90.00 pp per customer" in page


def test_a_stratum_with_one_customer(shop, shop_ids, tmp_path):
    table = experiment(shop_ids[:101], ["control", "coupon"] * 50 + ["coupon"], np.r_[np.tile([40.0, 55.0], 50), 99.0],
                       [0, 1] * 50 + [1], stratum=["A"] * 100 + ["B"])
    experiment_source = {"experiment": {**EXPERIMENT, "columns": {**EXPERIMENT["columns"], "stratum": "stratum"}}}
    client = shop_with(shop, tmp_path, experiment=table, params={"sources": experiment_source})
    page = readable(client.section("ab_test"))  # stratum B has no control: its mean is an empty cell, not "¥nan"
    assert "Not tested (fewer than 30 customers in an arm, `ab_test.min_n`): B." in page
    assert "Strata: the stratum of the experiment file (2 groups)." in page
    effects = pd.read_csv(client.run_dir / "tables" / "ab_effects.csv", encoding="utf-8-sig")
    b = effects[(effects["stratum"] == "B") & (effects["outcome"] == "revenue")].iloc[0]
    assert (b["n_control"], b["n_treatment"], b["mean_treatment"]) == (0, 1, 99.0) and pd.isna(b["p_value"])
    a = effects[(effects["stratum"] == "A") & (effects["outcome"] == "revenue")].iloc[0]
    assert a["difference"] == 15.0 and a["p_value"] < 1e-6  # 55 against 40 for every customer: no variance, a certain difference
    interaction = pd.read_csv(client.run_dir / "tables" / "ab_interaction.csv", encoding="utf-8-sig")
    assert interaction.empty and "Does the effect differ by stratum?" not in page  # one stratum left to test: no interaction test


# --------------------------------------------------------------------------- properties


@pytest.fixture(scope="module")
def default_params(tmp_path_factory):
    folder = tmp_path_factory.mktemp("params")
    shutil.copy(REPO / "params" / "default.yaml", folder / "default.yaml")
    client = {"sources": {"transactions": [{"name": "shop", "path": "orders.csv", "columns": {"id": "customer_id", "day": "order_date",
                                                                                             "amount": "amount"}}]},
              "clv": {"min_customers": 10, "min_repeat_customers": 5}}  # the smallest the params allow
    (folder / "edge.yaml").write_text(yaml.safe_dump(client), encoding="utf-8")
    return load_params("edge", folder)


TIED_RECENCY = st.one_of(st.sampled_from([1, 1, 7, 30, 365]), st.integers(1, 2000))
TIED_OCCASIONS = st.one_of(st.sampled_from([1, 1, 1, 2]), st.integers(1, 50))
TIED_SPEND = st.one_of(st.sampled_from([9.9, 9.9, 100.0, 1e9]), st.floats(0.01, 1e9, allow_nan=False))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(TIED_RECENCY, TIED_OCCASIONS, TIED_SPEND), min_size=1, max_size=60))
def test_rfm_scores_segments_and_tiers_on_any_positive_data(default_params, customers):
    summary = pd.DataFrame(customers, columns=["recency_days", "purchase_occasions", "monetary_total"])
    summary.insert(0, "customer_id", [f"c{i}" for i in range(len(summary))])
    n = default_params.rfm.n_scores
    scored = make_scorer(default_params).fit(summary).transform(summary)
    for key, column, better in (("r", "recency_days", -1), ("f", "purchase_occasions", 1), ("m", "monetary_total", 1)):
        score, value = scored[f"{key}_score"].to_numpy(), better * summary[column].to_numpy(float)
        assert ((score >= 1) & (score <= n)).all()
        # monotone in the value, ties share a score: a better value never has a lower score
        assert (score[:, None] >= score[None, :])[value[:, None] > value[None, :]].all()
        assert (score[:, None] == score[None, :])[value[:, None] == value[None, :]].all()
    segments_8 = {seg.zh for seg in default_params.rfm.segments_8.values()}
    assert scored["segment_zh"].isin(segments_8).all() and scored["named_segment"].notna().all()
    rules = make_tiers(default_params)
    tier = rules.fit(summary).assign(summary, scored)
    assert tier.isin([level.name for level in default_params.tiers.levels]).all()  # exactly one tier each
    basis = summary["monetary_total"].to_numpy()
    assert (tier.to_numpy()[:, None] == tier.to_numpy()[None, :])[basis[:, None] == basis[None, :]].all()  # ties never split
    assert (tier == "VIP").sum() >= min(int(np.ceil(round(0.05 * len(summary), 9))), len(summary))  # the top 5% is never short


# customers of 1-6 orders (same-day orders, equal amounts and 1e7 outliers included): 1-9 customers a third of the time
# (below clv.min_customers: the guard speaks), 10-25 otherwise (fits, non-convergence, boundary fits)
ORDER = st.tuples(st.integers(0, 400), st.one_of(st.floats(0.01, 1e7, allow_nan=False), st.just(100.0)))
CUSTOMERS = st.integers(0, 2).flatmap(lambda k: st.lists(st.lists(ORDER, min_size=1, max_size=6), min_size=1 if k == 0 else 10,
                                                         max_size=9 if k == 0 else 25))
# a shop that fits (BG/NBD-simulated, 40 customers): the fitted branch is always run
FITTING = [[(int((pd.Timestamp(day) - pd.Timestamp("2024-01-01")).days), amount) for _, day, amount in rows.itertuples(index=False)]
           for _, rows in bgnbd_orders(40, seed=3).groupby("customer_id")]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(CUSTOMERS, st.integers(1, 60))
@example(FITTING, 1)
def test_clv_summary_invariants_and_the_models_fit_or_say_why(default_params, customers, days_after):
    rows = [(f"c{i:02d}", day, amount) for i, orders in enumerate(customers) for day, amount in orders]
    orders = pd.DataFrame({"customer_id": [c for c, _, _ in rows],
                           "order_date": pd.Timestamp("2024-01-01") + pd.to_timedelta([d for _, d, _ in rows], unit="D"),
                           "net_amount": [a for _, _, a in rows]})
    as_of = orders["order_date"].max() + pd.Timedelta(days=days_after)
    summary = customer_summary(orders, as_of, time_unit="W")
    assert len(summary) == orders["customer_id"].nunique()
    assert (summary["frequency"] >= 0).all() and (summary["frequency"] == summary["purchase_occasions"] - 1).all()
    assert ((summary["recency"] >= 0) & (summary["recency"] <= summary["T"])).all()
    assert (summary.loc[summary["frequency"] == 0, ["recency", "monetary_value"]] == 0).all().all()
    assert (summary.loc[summary["frequency"] > 0, "monetary_value"] > 0).all() and (summary["recency_days"] >= days_after).all()
    for fit in (fit_bgnbd, fit_gamma_gamma):  # Pareto/NBD (derivative-free, 0.2 s a fit) is in test_every_customer_bought_once
        try:
            model = fit(summary)
        except TierbookError as error:  # the documented 'cannot fit' outcome: one line saying why
            assert "cannot be fitted" in _one_line(error)
            continue
        if model.converged_:
            values = np.array(list(model.params_.values()))
            assert np.isfinite(values).all() and (values > 0).all() and np.isfinite(model.log_likelihood_)
    try:
        value = fit_values(summary, default_params)
    except TierbookError as error:
        event("CLV: cannot fit (TierbookError)")
        assert "\n" not in _one_line(error)
        return
    event("CLV: fitted")
    c = value.customers
    assert c["p_alive"].between(0, 1).all() and np.isfinite(c[["expected_purchases", "expected_spend", "clv"]]).all().all()
    assert (c["clv"] >= 0).all() and (c["expected_purchases"] >= 0).all()


@st.composite
def experiments(draw):
    """One to three arms of 1-12 customers, a binary or a long-tailed outcome with ties and zeros,
    a covariate, and zero to three strata."""
    arms = ["control", "coupon", "sms"][:draw(st.sampled_from([2, 3, 1]))]  # one arm (a TierbookError) a third of the time at most
    sizes = [draw(st.integers(1, 12)) for _ in arms]
    n = sum(sizes)
    binary = draw(st.booleans())
    outcome = (st.sampled_from([0, 1]) if binary else st.one_of(st.just(0.0), st.sampled_from([5.0, 5.0, 1e9]), st.floats(0, 1e6)))
    strata = draw(st.sampled_from([["A"], ["A", "B"], ["A", "B", "C"]]))
    return pd.DataFrame({
        "variant": [arm for arm, size in zip(arms, sizes) for _ in range(size)],
        "y": draw(st.lists(outcome, min_size=n, max_size=n)),
        "x": draw(st.lists(st.one_of(st.just(0.0), st.floats(0, 1e6)), min_size=n, max_size=n)),
        "stratum": draw(st.lists(st.sampled_from(strata), min_size=n, max_size=n)),
    })


def contains_estimate(frame: pd.DataFrame, low: str, estimate: str, high: str) -> bool:
    rows = frame[[low, estimate, high]].dropna()
    slack = 1e-9 * (1 + rows[estimate].abs())
    return bool(((rows[low] <= rows[estimate] + slack) & (rows[estimate] <= rows[high] + slack)).all())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(experiments(), st.sampled_from([1, 2]))
def test_ab_effects_hold_their_estimates_and_raise_only_tierbook_errors(table, min_n):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            effects = abtest.evaluate(table, "y", control="control", strata="stratum", covariate="x", min_n=min_n, n_resamples=100)
        except TierbookError as error:
            event("A/B: one arm (TierbookError)")
            assert table["variant"].nunique() == 1 and "only the control arm" in _one_line(error)
            return
        for low, estimate, high in (("ci_low", "difference", "ci_high"), ("lift_ci_low", "relative_lift", "lift_ci_high"),
                                    ("cuped_ci_low", "cuped_difference", "cuped_ci_high"), ("boot_ci_low", "difference", "boot_ci_high")):
            if low in effects:
                assert contains_estimate(effects, low, estimate, high), (low, effects)
        tested = effects["p_value"].notna()
        event("A/B: some comparison tested" if tested.any() else "A/B: arms too small to test")
        assert effects["p_value"].dropna().between(0, 1).all() and effects.loc[tested, ["ci_low", "ci_high"]].notna().all().all()
        assert (effects.loc[tested, ["n_control", "n_treatment"]] >= max(min_n, 1)).all().all()
        srm = abtest.srm_check(table, strata="stratum")
        bayes = abtest.bayes(table, "y", control="control", strata="stratum", draws=2000)
        assert bayes["prob_beats_control"].between(0, 1).all() and (bayes["expected_loss"] >= 0).all()
        returns = abtest.roi(effects, "y", 10.0, 0.3)
        abtest.power(effects, table, control="control")
        verdicts = abtest.verdicts(effects, srm, "y", returns)
        assert len(verdicts) == (effects["outcome"] == "y").sum()
        abtest.interaction_test(table, "y", "stratum", control="control", covariate="x")


# --------------------------------------------------------------------------- whole reports


def page_text(path: Path) -> str:
    """What a browser shows of a page: scripts, styles and tags (embedded images with them) left out."""
    raw = path.read_text(encoding="utf-8")
    text = html.unescape(re.sub(r"<script.*?</script>|<style.*?</style>|<!--.*?-->|</?[A-Za-z][^>]*>", " ", raw, flags=re.S))
    return re.sub(r"\s+", " ", text)


def inputs_digest(folder: Path) -> dict[str, str]:
    import hashlib

    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.mark.slow
def test_a_demo_report_with_an_unanswered_survey_and_a_one_arm_experiment(tmp_path):
    """The demo (400 customers) whose survey export is first its header row only, then its rows with
    every score blank, and whose experiment kept only its control arm. The header-only file stops the
    report before any run folder exists, with one line; the blank answers are rejected row by row and
    every section succeeds, the two sections saying why they have nothing to show; no page shows a
    traceback, an exception or NaN, and the inputs are unchanged."""
    from tierbook.report import Project, run_report

    from .conftest import demo_files

    params, _, _ = demo_files(tmp_path, 400)
    data = params.data_dir(tmp_path)
    survey = data / "survey.csv"
    original = survey.read_bytes()
    survey.write_bytes(original.split(b"\n", 1)[0] + b"\n")  # UTF-8 BOM and the header row
    (tmp_path / "notebooks").symlink_to(REPO / "notebooks")
    project = Project(tmp_path)
    line = one_line_stop(lambda: run_report(project, "demo", ["demo.size=400"]))
    assert line == f"{survey}: has a header but no data rows; export it again with its rows, or remove source 'survey' from params"
    assert not (tmp_path / "reports").exists()  # stopped at the check of the inputs, before a run folder

    answers = pd.read_csv(io.BytesIO(original), dtype=str, keep_default_na=False, encoding="utf-8-sig")
    answers.assign(nps="", csat="").to_csv(survey, index=False, encoding="utf-8-sig")
    arms = pd.read_csv(data / "experiment.csv", dtype=str, keep_default_na=False)
    control = arms[arms["variant"] == "control"]
    control.to_csv(data / "experiment.csv", index=False)
    before = inputs_digest(data)

    run = run_report(project, "demo", ["demo.size=400"])
    assert run.status == "succeeded", {name: r.message for name, r in run.sections.items() if r.status != "succeeded"}
    assert inputs_digest(data) == before and (tmp_path / "reports" / "demo" / "latest").resolve() == run.run_dir
    pages = {name: readable(page_text(run.run_dir / f"{name}.html")) for name in NOTEBOOKS}
    assert ("The survey has only 0 answers with an NPS or CSAT score, fewer than the 30 this section needs (satisfaction.min_responses) "
            "for estimates worth showing.") in pages["satisfaction"]
    assert "The experiment table has only the control arm (control); there is nothing to compare." in pages["ab_test"]
    assert "There is no survey with NPS answers for this client, so churn is not linked to satisfaction here." in pages["churn"]
    assert "The survey table has 0 clean rows." in pages["data"]
    assert f"The experiment table has {len(control):,} clean rows." in pages["data"]
    rejected = pd.read_csv(run.run_dir / "rejected.csv", encoding="utf-8-sig")
    assert (rejected[rejected["source"] == "survey"]["reason"] == "no_score").sum() == len(answers)  # every answer accounted for
    cards = pages["summary"].split("First run for this client")[0].split("Demo retailer (synthetic)")[-1]
    findings = pages["summary"].split("Findings")[-1]
    assert "Mean CLV" in cards and "Churned" in cards and "NPS" not in cards and "CSAT" not in cards  # no satisfaction card
    assert "A/B test:" not in findings and "NPS is" not in findings
    for page in ["index.html"] + [f"{name}.html" for name in NOTEBOOKS]:
        assert "Traceback" not in (run.run_dir / page).read_text(encoding="utf-8")
    assert not list(run.run_dir.glob("*.error.txt"))


@pytest.mark.slow
def test_a_report_whose_tiers_cannot_be_computed_fails_one_section_with_one_line(tmp_path):
    """120 one-time buyers and ``tiers.basis: clv``: the rfm section stops with the one line that names
    the param and the fix, the sections after it are skipped, the run is failed and does not become
    ``latest``, and the run's front page shows the line."""
    from tierbook.report import Project, run_report

    client = Client(tmp_path, orders_of([(f"c{i:03d}", f"2024-{1 + i % 12:02d}-10", 50.0 + i) for i in range(120)]),
                    params={"tiers": {"basis": "clv"}})
    (tmp_path / "notebooks").symlink_to(REPO / "notebooks")
    shutil.rmtree(client.run_dir.parent)  # the in-process run folder: the report makes its own

    run = run_report(Project(tmp_path), "edge", today=TODAY)
    line = ("tiers.basis is clv but at 2024-12-11 only 0 of 120 customers bought again with positive net spend; the CLV models need at "
            "least 30 repeat buyers (clv.min_repeat_customers) to learn how often customers return; use tiers.basis: monetary_total")
    assert run.status == "failed" and run.sections["data"].status == "succeeded"
    assert run.sections["rfm"].status == "failed" and run.sections["rfm"].message == line
    assert {name for name, r in run.sections.items() if r.status == "skipped"} == {"clv", "satisfaction", "churn", "ab_test", "profile",
                                                                                    "summary"}
    assert not (tmp_path / "reports" / "edge" / "latest").exists()
    manifest = json.loads((run.run_dir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["status"] == "failed" and manifest["sections"]["rfm"]["message"] == line
    index = page_text(run.run_dir / "index.html")
    assert line in index and "Traceback" not in index
    readable(page_text(run.run_dir / "data.html"))
    assert sorted(p.name for p in run.run_dir.glob("*.html")) == ["data.html", "index.html"]
    assert "Traceback" in (run.run_dir / "rfm.error.txt").read_text(encoding="utf-8")  # for developers, not on a page
