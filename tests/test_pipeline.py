"""End to end: the whole pipeline on a small demo, in a temporary project folder."""

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from tierbook.cli import main
from tierbook.errors import TierbookError
from tierbook.ingest import file_sha256
from tierbook.pipeline import SECTIONS
from tierbook.report import run_section

from .conftest import REPO, tree_digest

EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//|url\(\s*["']?(?:https?:)?//|@import""", re.I)


@pytest.mark.slow
def test_run_folder_has_everything(demo_project):
    project, run = demo_project
    assert run.status == "succeeded"
    for name in ("index.html", "data.html", "manifest.json", "params.yaml", "rejected.csv", "notebooks/01_data.ipynb",
                 "tables/reconciliation.csv", "data/orders.parquet", "data/transactions.parquet", "data/customers.parquet"):
        assert (run.run_dir / name).is_file(), name
    latest = project.client_reports("demo") / "latest"
    succeeded = [p for p in sorted(project.client_reports("demo").glob("2*"))
                 if json.loads((p / "manifest.json").read_text(encoding="utf-8"))["status"] == "succeeded"]
    assert run.run_dir in succeeded  # other tests may have added runs (the zh run) since: latest is the newest that succeeded
    assert latest.is_symlink() and latest.resolve() == succeeded[-1]


@pytest.mark.slow
def test_section_html_is_offline_without_code_or_tracebacks(demo_project):
    _, run = demo_project
    for page in ["index.html"] + [f"{s.name}.html" for s in SECTIONS]:
        html = (run.run_dir / page).read_text(encoding="utf-8")
        assert not EXTERNAL.search(html), f"{page} loads something from the network"
        assert "<script src" not in html
        for code in ("open_run(", "import tierbook", "from tierbook", "Traceback", "jp-CodeMirrorEditor jp-Editor", "In&nbsp;["):
            assert code not in html, f"{page} shows {code!r}"
    data = (run.run_dir / "data.html").read_text(encoding="utf-8")
    assert len(re.findall(r"<img [^>]*src=\"data:image/png;base64,", data)) == 2  # the two figures are embedded
    assert 'href="index.html"' in data
    index = (run.run_dir / "index.html").read_text(encoding="utf-8")
    assert 'href="data.html"' in index and 'href="rfm.html"' in index and "succeeded" in index
    assert 'href="customer_scores.csv"' in index


@pytest.mark.slow
def test_manifest_records_params_inputs_versions_and_sections(demo_project):
    project, run = demo_project
    manifest = json.loads((run.run_dir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["client"] == "demo" and manifest["run_id"] == run.run_dir.name and manifest["status"] == "succeeded"
    assert manifest["params"]["demo"]["size"] == 400
    assert {"commit", "dirty", "started_at", "ended_at", "versions", "data_period"} <= set(manifest)
    assert manifest["versions"]["pandas"] == pd.__version__
    inputs = {rec["source"]: rec for rec in manifest["inputs"]}
    assert set(inputs) == {"ecommerce", "pos", "members", "survey", "experiment"}
    pos = inputs["pos"]
    assert pos["sha256"] == file_sha256(Path(pos["path"]))
    assert pos["rows"] == len(pd.read_csv(pos["path"], encoding="gbk"))
    assert manifest["sections"]["data"]["status"] == "succeeded" and manifest["sections"]["data"]["seconds"] > 0


@pytest.mark.slow
def test_cleaning_recovers_the_planted_dirt(demo_project):
    project, run = demo_project
    truth = json.loads((project.root / "data/demo/TRUTH.json").read_text(encoding="utf-8"))
    dirt = truth["dirt"]
    ledger = pd.read_parquet(run.run_dir / "data/ledger.parquet")
    ledger = ledger[ledger["table"] == "transactions"]
    counts = ledger["reason"].value_counts()
    assert counts["missing_customer_id"] == dirt["missing_customer_id"]
    assert counts["exact_duplicate"] == dirt["exact_duplicate_pos_lines"]
    assert counts["cross_source_duplicate"] == dirt["cross_channel_duplicates"]
    assert counts["future_date"] == dirt["future_dates"]
    assert counts["unparseable_date"] == dirt["unparseable_dates"]
    assert counts["outlier"] == dirt["outliers"]
    assert counts["non_positive_amount"] == dirt["zero_amount_lines"] + dirt["negative_amount_not_return"]
    returns = ledger["order_id"].str.startswith("P") & ledger["reason"].isin(["return_netted", "fully_returned"])
    is_return = ledger["amount"] < 0
    assert (is_return & ledger["reason"].isin(["return_netted", "fully_returned"])).sum() == dirt["returns"]
    assert "return_unmatched" not in counts
    orders = pd.read_parquet(run.run_dir / "data/orders.parquet")
    assert len(orders) == truth["n_orders"] - dirt["returns_fully_returned_orders"]
    assert orders["net_amount"].sum() == pytest.approx(truth["total_revenue"] - dirt["returns_amount"], abs=0.01)
    assert orders["customer_id"].nunique() <= truth["n_customers"]
    del returns


@pytest.mark.slow
def test_second_run_adds_a_version_and_leaves_the_first_untouched(demo_project, demo_zh):
    project, first = demo_project
    second, before = demo_zh  # the same data, the report in Chinese
    assert second.status == "succeeded" and second.run_dir != first.run_dir
    assert second.run_dir.name > first.run_dir.name  # run ids sort by time
    assert tree_digest(first.run_dir) == before
    assert (project.client_reports("demo") / "latest").resolve() == second.run_dir
    # deterministic: the same inputs and params give the same clean tables
    for table in ("orders", "transactions", "ledger"):
        pd.testing.assert_frame_equal(pd.read_parquet(first.run_dir / f"data/{table}.parquet"),
                                      pd.read_parquet(second.run_dir / f"data/{table}.parquet"))
    # the executive summary compares with the first run: same figures, zero deltas, nobody changed tier
    one = (first.run_dir / "summary.html").read_text(encoding="utf-8")
    assert "First run for this client: no comparison yet." in one and '<div class="tb-label">Customers</div>' in one
    two = (second.run_dir / "summary.html").read_text(encoding="utf-8")
    assert '<div class="tb-label">客户数</div>' in two and "对比上次运行" in two and "VIP客户" in two and "Traceback" not in two
    assert json.loads((second.run_dir / "kpis.json").read_text()) == json.loads((first.run_dir / "kpis.json").read_text())
    customers = json.loads((first.run_dir / "kpis.json").read_text())["customers"]
    assert f"层级流动：0 位客户升级，0 位降级，{customers:,} 位不变；新增 0 位" in two
    # the profile section's lapsing count reaches the summary, in the page's language
    kpis = json.loads((second.run_dir / "kpis.json").read_text())
    lapsing = kpis["lifecycle.lapsing.customers"]
    assert lapsing == (pd.read_parquet(second.run_dir / "data/customer_scores.parquet")["lifecycle_stage"] == "lapsing").sum()
    assert f"（{lapsing:,} 位）处于沉默期" in two and f"({lapsing:,}) are lapsing" in one
    assert (second.run_dir / "customer_tags.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    assert '<a href="customer_tags.csv">' in (second.run_dir / "index.html").read_text(encoding="utf-8")


@pytest.mark.slow
def test_run_index_compares_with_the_previous_run_and_the_client_index_lists_every_run(demo_project, demo_zh):
    project, first = demo_project
    second, _ = demo_zh
    kpis = json.loads((first.run_dir / "kpis.json").read_text())
    one = (first.run_dir / "index.html").read_text(encoding="utf-8")
    assert "First successful run for this client: no comparison yet." in one and "Tier migration" not in one
    two = (second.run_dir / "index.html").read_text(encoding="utf-8")
    assert "与上一次成功运行相比的变化" in two and f'href="../{first.run_dir.name}/index.html"' in two
    assert two.count("+0.0%") >= 3 and "自上次运行以来的层级迁移" in two  # same data: no change
    # the migration table: every customer stays in the tier they had (the diagonal), none new
    scores = pd.read_parquet(first.run_dir / "data/customer_scores.parquet")
    counts = scores["tier"].value_counts()
    for tier, zh in (("VIP", "VIP客户"), ("Regular", "普通客户"), ("Potential", "潜在客户")):
        row = re.search(rf"<tr><td>{zh}</td>((?:<td>[\d,]+</td>)+)</tr>", two)
        assert row, zh
        cells = [int(v.replace(",", "")) for v in re.findall(r"<td>([\d,]+)</td>", row.group(1))]
        assert sum(cells) == counts[tier] and max(cells) == counts[tier]
    assert "<tr><td>新增</td>" not in two
    client = (project.client_reports("demo") / "index.html").read_text(encoding="utf-8")
    runs = re.findall(r'<a href="([\d-]+)/index.html">', client)
    assert runs == sorted(runs, reverse=True) and {first.run_dir.name, second.run_dir.name} <= set(runs)
    assert f"{kpis['customers']:,}" in client and "最新" in client
    assert f"{kpis['period_start']} 至 {kpis['period_end']}" in client and f"{kpis['period_start']} 至 {kpis['period_end']}" in two  # the newest run is in Chinese, so is the list


@pytest.mark.slow
def test_section_rerun_updates_the_newest_run(demo_project, capsys):
    project, _ = demo_project
    result = run_section(project, "demo", "data")
    assert result.status == "succeeded"
    manifest = json.loads((result.run_dir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["reruns"][-1]["section"] == "data" and manifest["reruns"][-1]["status"] == "succeeded"
    with pytest.raises(TierbookError, match="unknown section 'rmf'; sections: summary, data, rfm, profile, clv"):
        run_section(project, "demo", "rmf")


@pytest.mark.slow
def test_a_failing_section_fails_the_run_in_one_line_and_keeps_latest(demo_project, capsys):
    """A problem the check before the run cannot see (here: an analysis date before every order,
    found by the rfm section) fails that section in one line, skips what depends on it, and leaves
    latest where it was. (A bad file now stops before any run: tests/test_bad_input.py.)"""
    project, _ = demo_project
    latest = project.client_reports("demo") / "latest"
    latest_before = latest.resolve()
    broken = (project.params_dir / "demo.yaml").read_text(encoding="utf-8")
    (project.params_dir / "broken.yaml").write_text(broken.replace("generate: true", "generate: false"), encoding="utf-8")
    (project.root / "data" / "broken").symlink_to(project.root / "data" / "demo")
    capsys.readouterr()
    assert main(["--root", str(project.root), "report", "--client", "broken", "--set", "demo.size=400", "--set", "rfm.as_of=2000-01-01"]) == 1
    out = capsys.readouterr().out
    failure = [line for line in out.splitlines() if "✗" in line]
    assert len(failure) == 1
    assert "no order is before as_of 2000-01-01 (data period 2024-01-01 to 2025-12-31); set rfm.as_of to a later date" in failure[0]
    assert "notebooks/02_rfm.ipynb" in failure[0] and "Traceback" not in out
    run_dir = sorted((project.client_reports("broken")).glob("2*"))[-1]
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["status"] == "failed" and manifest["sections"]["rfm"]["status"] == "failed"
    assert manifest["sections"]["data"]["status"] == "succeeded" and manifest["sections"]["clv"]["status"] == "skipped"
    assert (run_dir / "data.html").exists() and not (run_dir / "rfm.html").exists()
    assert not (project.client_reports("broken") / "latest").exists()
    assert latest.resolve() == latest_before
    index = (run_dir / "index.html").read_text(encoding="utf-8")
    assert "failed" in index and "Traceback" not in index
    runs = (project.client_reports("broken") / "index.html").read_text(encoding="utf-8")  # the client's list shows it failed
    row = re.search(rf'<a href="{run_dir.name}/index.html">.*?</tr>', runs, re.S).group(0)
    assert 'class="tb-failed">failed<' in row and "latest" not in row


def test_bad_params_and_inputs_stop_before_any_run(tmp_path, capsys):
    (tmp_path / "params").mkdir()
    shutil.copy(REPO / "params" / "default.yaml", tmp_path / "params")
    (tmp_path / "params" / "acme.yaml").write_text(
        "sources:\n  transactions:\n    - {name: shop, path: shop.csv, columns: {id: customer_id, day: order_date, amt: amount}}\n",
        encoding="utf-8")
    assert main(["--root", str(tmp_path), "report", "--client", "nope"]) == 2
    assert capsys.readouterr().err.strip() == "error: unknown client 'nope': no {}; clients: acme (create params/nope.yaml; params/demo.yaml is a worked example)".format(
        tmp_path.resolve() / "params" / "nope.yaml")
    assert main(["--root", str(tmp_path), "report", "--client", "acme"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: source 'shop': file ") and err.endswith("shop.csv does not exist; put the export there or fix `path` in params/acme.yaml")
    (tmp_path / "data" / "acme").mkdir(parents=True)
    (tmp_path / "data" / "acme" / "shop.csv").write_text("id,date,amt\n1,2024-01-01,5\n", encoding="utf-8")
    assert main(["--root", str(tmp_path), "check", "--client", "acme"]) == 2
    assert "column 'day' (mapped to order_date) is not in the file; did you mean 'date'?" in capsys.readouterr().err
    assert not (tmp_path / "reports").exists()


def test_ready_sections_start_longest_chain_first_and_a_section_read_late_before_its_reader(monkeypatch):
    """When rfm's outputs are written, churn has the costliest chain to the end of the report, but it reads clv's outputs
    late (reads_later): clv takes the first slot and churn the second, before ab_test and profile; when clv is done, the
    free slot goes to ab_test (the costlier chain), not to profile or satisfaction. The sections' costs are set here
    (seconds of a 1M-customer report), so the test does not move with their tuning."""
    import dataclasses
    import threading
    from types import SimpleNamespace

    from tierbook import report
    from tierbook.pipeline import by_priority, chain_cost

    cost = {"summary": 1, "data": 97, "rfm": 41, "profile": 45, "clv": 36, "satisfaction": 18, "churn": 61, "ab_test": 55}
    sections = tuple(dataclasses.replace(s, cost=cost[s.name]) for s in SECTIONS)
    assert chain_cost("clv", sections) == 36 + 18 and chain_cost("churn", sections) == 61 + 1
    assert chain_cost("data", sections) == 97 + 41 + chain_cost("churn", sections)
    assert [s.name for s in by_priority(sections)] == ["data", "rfm", "churn", "ab_test", "clv", "profile", "satisfaction", "summary"]
    started, clv_done = [], threading.Event()

    def execute(project, params, run_dir, section, on_outputs=None):
        started.append(section.name)
        if section.name == "churn":
            clv_done.wait(5)  # still running when clv finishes
        if section.name in ("ab_test", "profile", "satisfaction"):
            clv_done.set()
        return report.SectionResult(section.name, "succeeded")

    monkeypatch.setattr(report, "_execute_section", execute)
    results = {}
    report._run_sections(None, SimpleNamespace(run=SimpleNamespace(parallel=2)), None, list(sections), results, lambda result: None)
    assert started[:5] == ["data", "rfm", "clv", "churn", "ab_test"]
    assert {r.status for r in results.values()} == {"succeeded"} and started[-1] == "summary"


def test_one_slot_runs_a_section_read_late_before_its_reader(monkeypatch):
    """With run.parallel 1, churn (waiting inside for clv's outputs) must not take the only slot before clv: it would
    wait for ever."""
    from types import SimpleNamespace

    from tierbook import report

    started = []

    def execute(project, params, run_dir, section, on_outputs=None):
        started.append(section.name)
        return report.SectionResult(section.name, "succeeded")

    monkeypatch.setattr(report, "_execute_section", execute)
    results = {}
    report._run_sections(None, SimpleNamespace(run=SimpleNamespace(parallel=1)), None, list(SECTIONS), results, lambda result: None)
    assert started.index("clv") < started.index("churn") and len(started) == len(SECTIONS)


def test_wait_for_waits_while_the_runner_runs_the_section_and_not_otherwise(tmp_path):
    import subprocess
    import sys
    import threading
    import time

    from tierbook.pipeline import MARKS, mark, mark_runner, wait_for

    assert wait_for(tmp_path, "clv") is True  # no record: a section run on its own reads the folder as it is
    mark_runner(tmp_path)  # this process runs the report
    timer = threading.Timer(0.4, mark, (tmp_path, "clv", "written"))
    began = time.perf_counter()
    timer.start()
    assert wait_for(tmp_path, "clv", poll=0.02) is True and time.perf_counter() - began >= 0.35
    mark(tmp_path, "profile", "failed")
    assert wait_for(tmp_path, "profile") is False
    mark(tmp_path, "ab_test", "skipped")
    assert wait_for(tmp_path, "ab_test") is False
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    (tmp_path / MARKS / "runner.pid").write_text(gone)  # the report was interrupted: nobody will write churn's record
    assert wait_for(tmp_path, "churn") is True


def test_dependents_start_when_outputs_are_written_and_the_summary_reads_only_finished_sections(monkeypatch, tmp_path):
    """A section reports its outputs written (the notebook cell tagged OUTPUTS_TAG has run) before its figures and page
    are done: its dependents start then. The summary (after_pages) starts when the sections whose columns the CRM files
    hold have finished and satisfaction and ab_test have started; it reads their tables only once they have finished:
    satisfaction failed after writing its outputs, so the summary learns that it failed (and is skipped)."""
    import threading
    import time
    from types import SimpleNamespace

    from tierbook import report
    from tierbook.pipeline import section_named, wait_for

    events, lock = [], threading.Lock()

    def log(what):
        with lock:
            events.append(what)

    def execute(project, params, run_dir, section, on_outputs=None):
        log(("start", section.name))
        if section.name == "summary":  # what executive.run_summary_stage does after the CRM files
            ok = all([wait_for(run_dir, name, poll=0.01, finished=True) for name in section.reads_later])
            log(("read", "summary"))
            return report.SectionResult(section.name, "succeeded" if ok else "skipped")
        time.sleep(0.05)
        log(("written", section.name))
        on_outputs()
        time.sleep(0.3)  # its figures and page
        log(("done", section.name))
        return report.SectionResult(section.name, "failed" if section.name == "satisfaction" else "succeeded")

    monkeypatch.setattr(report, "_execute_section", execute)
    results = {}
    report._run_sections(None, SimpleNamespace(run=SimpleNamespace(parallel=2)), tmp_path, list(SECTIONS), results, lambda result: None)
    at = {event: i for i, event in enumerate(events)}
    assert at[("start", "rfm")] < at[("done", "data")], "rfm starts on data's outputs, before data's page is done"
    assert at[("written", "data")] < at[("start", "rfm")]
    assert at[("start", "clv")] < at[("done", "rfm")]
    summary = section_named("summary")
    assert set(summary.reads_later) == {"satisfaction", "ab_test"}
    assert max(at[("done", name)] for name in summary.depends_on) < at[("start", "summary")]
    assert max(at[("start", name)] for name in summary.reads_later) < at[("start", "summary")]
    assert max(at[("done", name)] for name in summary.reads_later) < at[("read", "summary")]
    assert results["summary"].status == "skipped" and results["satisfaction"].status == "failed"
    assert all(results[s.name].status == "succeeded" for s in SECTIONS if s.name not in ("satisfaction", "summary"))


def test_the_summary_stops_when_a_section_it_reads_failed_and_is_reported_skipped(tmp_path):
    """executive.run_summary_stage waits for satisfaction and ab_test to finish (pipeline.wait_for) and raises
    UpstreamFailed when one did not succeed; the runner reports a section that raised it skipped, not failed, with
    no error file."""
    from types import SimpleNamespace

    from tierbook import report
    from tierbook.errors import UpstreamFailed
    from tierbook.execute import CellError
    from tierbook.executive import run_summary_stage
    from tierbook.params import load_params
    from tierbook.pipeline import mark, mark_runner

    params = load_params("demo", REPO / "params")
    mark_runner(tmp_path)
    mark(tmp_path, "ab_test", "succeeded")
    mark(tmp_path, "satisfaction", "written")
    mark(tmp_path, "satisfaction", "failed")
    with pytest.raises(UpstreamFailed, match="The satisfaction section did not succeed, so this run has no summary"):
        run_summary_stage(params, tmp_path)

    project = SimpleNamespace(notebooks_dir=tmp_path, root=tmp_path)
    section = SimpleNamespace(name="summary", notebook="00_summary.ipynb")
    for error in (UpstreamFailed("satisfaction did not succeed"), CellError("UpstreamFailed", "satisfaction did not succeed", 2)):
        def execute(*args, error=error):
            raise error

        result = report._notebook_and_html(project, params, tmp_path, section, execute)
        assert (result.status, result.message) == ("skipped", "satisfaction did not succeed")
        assert not (tmp_path / "summary.error.txt").exists()
    result = report._notebook_and_html(project, params, tmp_path, section, lambda *args: 1 / 0)
    assert result.status == "failed" and result.message == "ZeroDivisionError: division by zero"
    assert (tmp_path / "summary.error.txt").exists()
