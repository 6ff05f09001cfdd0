"""The runner's scheduling, run folders and `latest`, without executing notebooks."""

import sys
import threading
import time
from pathlib import Path

import pytest

from tierbook import report
from tierbook.params import load_params
from tierbook.pipeline import Section
from tierbook.report import SectionResult, new_run_dir

from .conftest import REPO


def test_run_dirs_are_unique_and_sort_by_time_even_when_concurrent(tmp_path):
    made = []
    threads = [threading.Thread(target=lambda: made.append(new_run_dir(tmp_path / "acme"))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({p.name for p in made}) == 8
    sequence = [new_run_dir(tmp_path / "seq") for _ in range(15)]  # many within one millisecond
    assert [p.name for p in sequence] == sorted(p.name for p in sequence)


def test_latest_never_moves_backwards(tmp_path):
    client = tmp_path / "acme"
    older, newer = new_run_dir(client), None
    time.sleep(0.002)
    newer = new_run_dir(client)
    report._update_latest(client, newer)
    report._update_latest(client, older)  # a slower, older run finishing last
    assert (client / "latest").resolve() == newer


@pytest.fixture
def fake_sections(monkeypatch):
    """Replace notebook execution by a timed stub that records start and end times."""
    log = {}

    def execute(project, params, run_dir, section, on_outputs=None):
        log[section.name] = [time.perf_counter()]
        time.sleep(0.3)
        log[section.name].append(time.perf_counter())
        status = "failed" if section.name.startswith("bad") else "succeeded"
        return SectionResult(section.name, status, 0.3, "boom" if status == "failed" else "")

    monkeypatch.setattr(report, "_execute_section", execute)
    return log


def _run(sections, parallel, tmp_path):
    params = load_params("demo", REPO / "params", [f"run.parallel={parallel}"])
    results = {}
    report._run_sections(None, params, tmp_path, sections, results, lambda r: None)
    return results


def test_independent_sections_run_in_parallel_and_dependents_wait(fake_sections, tmp_path):
    sections = [Section("a", "a", "A"), Section("b", "b", "B"), Section("c", "c", "C", depends_on=("a", "b"))]
    results = _run(sections, 2, tmp_path)
    assert {n: r.status for n, r in results.items()} == {"a": "succeeded", "b": "succeeded", "c": "succeeded"}
    log = fake_sections
    assert log["b"][0] < log["a"][1] and log["a"][0] < log["b"][1]  # a and b overlapped
    assert log["c"][0] >= max(log["a"][1], log["b"][1])  # c waited for both


def test_one_at_a_time_when_parallel_is_one(fake_sections, tmp_path):
    _run([Section("a", "a", "A"), Section("b", "b", "B")], 1, tmp_path)
    log = fake_sections
    first, second = sorted(log.values())
    assert second[0] >= first[1]


def test_a_failed_section_skips_its_dependents_only(fake_sections, tmp_path):
    sections = [Section("bad", "x", "X"), Section("ok", "y", "Y"), Section("after_bad", "z", "Z", depends_on=("bad",)),
                Section("after_ok", "w", "W", depends_on=("ok",))]
    results = _run(sections, 2, tmp_path)
    assert {n: r.status for n, r in results.items()} == {
        "bad": "failed", "ok": "succeeded", "after_bad": "skipped", "after_ok": "succeeded"}
    assert "after_bad" not in fake_sections


def test_parallel_kernels_get_private_sockets_that_are_removed_after_shutdown(tmp_path, monkeypatch):
    """Two kernels started together must not share jupyter_client's default ``kernel-ipc-<n>`` path
    in the working directory (they read each other's messages: 'Invalid Signature')."""
    import asyncio
    import os

    monkeypatch.chdir(tmp_path)
    manager_class = report._kernel_manager_class()

    async def start_run_stop():
        km = manager_class(kernel_name="python3")
        await km.start_kernel()
        kc = km.client()
        kc.start_channels()
        await kc.wait_for_ready(timeout=60)
        reply = await kc.execute_interactive("import os; os.getpid()", store_history=False, timeout=60)
        kc.stop_channels()
        socket_dir = km._socket_dir
        assert os.path.isdir(socket_dir) and km.ip.startswith(socket_dir)
        await km.shutdown_kernel(now=True)
        return socket_dir, reply["content"]["status"]

    async def both():
        return await asyncio.gather(start_run_stop(), start_run_stop())

    (dir_a, status_a), (dir_b, status_b) = asyncio.run(both())
    assert status_a == status_b == "ok"
    assert dir_a != dir_b
    assert not os.path.exists(dir_a) and not os.path.exists(dir_b)
    assert not list(tmp_path.glob("kernel-ipc-*"))


def test_customer_scores_are_replaced_whole(tmp_path, monkeypatch):
    """Sections running in parallel read data/customer_scores.parquet while another rewrites it: the file is written
    beside and renamed into place, so a write that fails half-way leaves the previous file whole and no partial file."""
    import pandas as pd

    from tierbook import crm

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    first = pd.DataFrame({"customer_id": ["C1", "C2"], "tier": ["VIP", "Regular"]})
    crm.write_customer_scores(first, run_dir, export=False)

    def half_written(table, where, **kwargs):
        Path(where).write_bytes(b"PAR1 cut off")
        raise OSError("disk full")

    monkeypatch.setattr(crm.pq, "write_table", half_written)
    with pytest.raises(OSError):
        crm.write_customer_scores(first.assign(tier="VIP"), run_dir, export=False)
    monkeypatch.undo()
    pd.testing.assert_frame_equal(pd.read_parquet(run_dir / "data" / "customer_scores.parquet"), first)
    crm.write_customer_scores(first.assign(tier="VIP"), run_dir, export=False)
    assert pd.read_parquet(run_dir / "data" / "customer_scores.parquet")["tier"].tolist() == ["VIP", "VIP"]
    assert sorted(p.name for p in (run_dir / "data").iterdir()) == ["customer_scores.parquet"]


def test_an_input_written_to_during_the_run_fails_it_and_latest_stays(tmp_path, monkeypatch):
    """The inputs' size and modification time are taken before the run and compared when it ends (not hashed again)."""
    from tierbook.pipeline import SECTIONS
    from tierbook.report import Project, run_report

    from .conftest import SMALL, demo_files

    params, _, _ = demo_files(tmp_path, 400)
    (tmp_path / "notebooks").symlink_to(REPO / "notebooks")
    survey = params.source_path(tmp_path, params.sources.survey)
    before = survey.read_bytes()

    def sections(project, params, run_dir, names, results, on_done, touch=True, **_):
        for section in names:
            results[section.name] = SectionResult(section.name, "succeeded", 0.1)
        if touch:
            survey.write_bytes(before + b"\n")  # a line added while the run read the file (a copy still in progress)

    monkeypatch.setattr(report, "_run_sections", sections)
    run = run_report(Project(tmp_path), "demo", SMALL + ["run.executor=kernel"])
    assert run.status == "failed"
    assert run.sections["data"].message == f"input file changed while the run read it: {survey}; run again when it is stable"
    assert not (tmp_path / "reports" / "demo" / "latest").exists()
    assert len(run.sections) == len(SECTIONS)

    monkeypatch.setattr(report, "_run_sections", lambda *args, **kw: sections(*args, touch=False))
    again = run_report(Project(tmp_path), "demo", SMALL + ["run.executor=kernel"])
    assert again.status == "succeeded", "the same files, untouched: no change seen"
    # no data section ran here (no inputs.json, whose checksums a real run records): each file's checksum as it is now
    import json

    from tierbook.ingest import file_sha256

    inputs = json.loads((again.run_dir / "manifest.json").read_text(encoding="utf-8"))["inputs"]
    assert {r["source"]: r["sha256"] for r in inputs} == {r["source"]: file_sha256(Path(r["path"])) for r in inputs}
    assert len(inputs) == 5 and all(len(r["sha256"]) == 64 for r in inputs)


def _huge_pages(queue) -> None:
    """numpy's madvise setting, and whether the process may have transparent huge pages once Arrow has allocated
    (None off Linux, where Arrow is not on mimalloc, or where the kernel does not say: no THP_enabled in /proc/self/status)."""
    import pyarrow as pa
    from numpy._core import multiarray

    pa.array(range(1000))  # Arrow's allocator initialised
    thp = []
    if sys.platform == "linux" and pa.default_memory_pool().backend_name == "mimalloc":  # Arrow's default allocator there
        with open("/proc/self/status", encoding="utf-8") as status:
            thp = [line.split()[1] for line in status if line.startswith("THP_enabled:")]
    queue.put((bool(multiarray._get_madvise_hugepage()), thp[0] == "1" if thp else None))


def test_sections_processes_do_not_ask_for_huge_pages_unless_told(monkeypatch):
    """Faults on huge pages zeroed 2 MiB each and waited on the kernel's compaction on this machine: the sections'
    processes (spawned, or forked from the fork server) start with NUMPY_MADVISE_HUGEPAGE=0 and MIMALLOC_ALLOW_THP=0
    (Arrow's allocator: the process's transparent huge pages off) unless the consultant set them."""
    import multiprocessing

    monkeypatch.setenv("NUMPY_MADVISE_HUGEPAGE", "1")
    monkeypatch.setenv("MIMALLOC_ALLOW_THP", "1")
    report._sections_environment()
    assert report.os.environ["NUMPY_MADVISE_HUGEPAGE"] == "1"  # the consultant's own values are kept
    assert report.os.environ["MIMALLOC_ALLOW_THP"] == "1"
    monkeypatch.delenv("NUMPY_MADVISE_HUGEPAGE")
    monkeypatch.delenv("MIMALLOC_ALLOW_THP")
    report._sections_environment()
    assert report.os.environ["NUMPY_MADVISE_HUGEPAGE"] == "0"
    assert report.os.environ["MIMALLOC_ALLOW_THP"] == "0"
    context = multiprocessing.get_context("spawn")  # the data section's; numpy and mimalloc read the variables on import
    queue = context.Queue()
    process = context.Process(target=_huge_pages, args=(queue,))
    process.start()
    numpy_madvise, thp = queue.get(timeout=120)
    process.join()
    assert numpy_madvise is False
    if thp is not None:
        assert thp is False


def test_the_fork_server_runs_below_the_data_section_but_never_above_a_lower_priority_it_has():
    """The fork server (and the sections forked from it) at nice 10, under the spawned data section, whose reading then
    has both cores while the server imports; a process already lower (nice 15) stays there; a gone one is no error."""
    import subprocess
    import sys

    for step in (0, 15):
        child = subprocess.Popen([sys.executable, "-c", f"import os, time; os.nice({step}); print(os.getpriority(os.PRIO_PROCESS, 0), "
                                  "flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
        try:
            before = int(child.stdout.readline())  # this process's own value plus the step (at most 19)
            report._lower_priority(child.pid)
            assert report.os.getpriority(report.os.PRIO_PROCESS, child.pid) == max(before, report.FORK_SERVER_NICE)
        finally:
            child.kill()
            child.wait()
    report._lower_priority(child.pid)  # gone: nothing happens
    report._lower_priority(None)


def test_the_fork_server_starts_once_the_data_section_has_read_large_inputs(tmp_path, monkeypatch):
    """For large inputs the fork server (the later sections' libraries, 0.28 GiB) starts when the data section has
    read its inputs (its ``read`` mark) or written its outputs, not beside the reading; a run that ends first (``stop``)
    never starts it."""
    from tierbook.pipeline import MARKS

    calls = []
    monkeypatch.setattr(report, "start_fork_server", lambda: calls.append(time.perf_counter()))
    for state in ("read", "written"):
        run_dir = tmp_path / state
        (run_dir / MARKS).mkdir(parents=True)
        (run_dir / MARKS / "rfm.written").touch()  # another section's mark: not the data section's
        thread = report._start_fork_server_after(run_dir, "data", threading.Event())
        time.sleep(0.4)
        assert not calls, "started before the data section had read its inputs"
        (run_dir / MARKS / f"data.{state}").touch()
        thread.join(timeout=10)
        assert len(calls) == 1 and not thread.is_alive()
        calls.clear()
    (tmp_path / "ended" / MARKS).mkdir(parents=True)
    stop = threading.Event()
    thread = report._start_fork_server_after(tmp_path / "ended", "data", stop)
    stop.set()
    thread.join(timeout=10)
    assert not thread.is_alive() and not calls


def test_large_inputs_defer_the_fork_server_and_the_data_stage_marks_its_inputs_read(tmp_path, monkeypatch):
    """run_report starts the fork server before its checks unless the inputs reach DEFER_FORK_SERVER_BYTES; then it
    hands the runner the data section to wait for, whose stage marks its inputs read only when a runner records marks."""
    from tierbook.data import run_data_stage
    from tierbook.pipeline import MARKS
    from tierbook.report import Project, run_report

    from .conftest import SMALL, demo_files

    params, _, _ = demo_files(tmp_path, 400)
    (tmp_path / "notebooks").symlink_to(REPO / "notebooks")
    seen = []

    def sections(project, params, run_dir, names, results, on_done, fork_server_after=None):
        seen.append((fork_server_after, list(started)))
        for section in names:
            results[section.name] = SectionResult(section.name, "succeeded", 0.1)

    started = []
    monkeypatch.setattr(report, "start_fork_server", lambda: started.append(True))
    monkeypatch.setattr(report, "_run_sections", sections)
    inputs = report._input_bytes(params, tmp_path)
    assert inputs == sum(params.source_path(tmp_path, s).stat().st_size for _, s in params.sources.all())
    for threshold, want in ((inputs + 1, (None, [True])), (inputs, ("data", []))):
        monkeypatch.setattr(report, "DEFER_FORK_SERVER_BYTES", threshold)
        started.clear()
        assert run_report(Project(tmp_path), "demo", SMALL).status == "succeeded"
        assert seen.pop() == want

    for recorded in (False, True):
        run_dir = tmp_path / f"stage-{recorded}"
        if recorded:
            (run_dir / MARKS).mkdir(parents=True)
        run_data_stage(params, tmp_path, run_dir)
        assert (run_dir / MARKS / "data.read").exists() is recorded
        assert (run_dir / MARKS).exists() is recorded  # no marks folder made for a stage run on its own


_LEAN_RUNNER = """
import json, sys
from pathlib import Path
from tierbook import report
from tierbook.report import Project, SectionResult

seen = {}

def sections(project, params, run_dir, names, results, on_done, **_):
    seen.update({name: name in sys.modules for name in ("pandas", "numpy", "pyarrow", "tierbook.ingest", "tierbook.demo")})
    for section in names:
        results[section.name] = SectionResult(section.name, "succeeded", 0.1)

report._run_sections = sections
report.start_fork_server = lambda: None
run = report.run_report(Project(Path(sys.argv[1])), "demo", sys.argv[2:])
print(json.dumps({"status": run.status, "seen": seen}))
"""


def test_the_runner_waits_for_the_sections_without_the_libraries_and_its_checks_still_stop_a_run(tmp_path):
    """``make report``'s process checks the inputs and makes the demo's data in a process of its own: while the sections
    run it has imported neither pandas, numpy nor Arrow (0.1 GiB less beside them); a check's one-line error still
    stops the run before any run folder is made. pandas, once imported, keeps its text in Arrow (``tierbook``)."""
    import json
    import subprocess

    from .conftest import SMALL, demo_files

    params, _, _ = demo_files(tmp_path, 400)
    (tmp_path / "notebooks").symlink_to(REPO / "notebooks")
    out = subprocess.run([sys.executable, "-c", _LEAN_RUNNER, str(tmp_path), *SMALL], capture_output=True, text=True, check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got == {"status": "succeeded", "seen": {"pandas": False, "numpy": False, "pyarrow": False, "tierbook.ingest": False,
                                                    "tierbook.demo": False}}
    assert "demo data:" in out.stdout  # the demo's data made (here: found) in the checks' process

    # a source without the column the params map to customer_id: the check's error, from the checks' process, as the
    # runner's one line
    pos = params.source_path(tmp_path, params.sources.transactions[0])  # the e-commerce export: its member_id renamed
    text = pos.read_bytes()
    pos.write_bytes(text.replace(b"member_id", b"member_no", 1))
    before = sorted((tmp_path / "reports" / "demo").iterdir())
    overrides = [*SMALL, "demo.generate=false"]  # the demo's data as it is (made again when it differs, otherwise)
    failed = subprocess.run([sys.executable, "-m", "tierbook", "--root", str(tmp_path), "report", "--client", "demo",
                             *sum((["--set", s] for s in overrides), [])], capture_output=True, text=True)
    assert failed.returncode != 0 and "Traceback" not in failed.stdout + failed.stderr
    line = [row for row in (failed.stdout + failed.stderr).splitlines() if row.startswith("error")]
    assert len(line) == 1 and str(pos) in line[0], failed.stdout + failed.stderr
    assert sorted((tmp_path / "reports" / "demo").iterdir()) == before  # no run folder made

    fresh = subprocess.run([sys.executable, "-c", "import sys, tierbook; assert 'pandas' not in sys.modules; import pandas as pd; "
                            "print(pd.get_option('mode.string_storage'), pd.Series(['a']).astype('string').dtype.storage)"],
                           capture_output=True, text=True, check=True)
    assert fresh.stdout.split() == ["pyarrow", "pyarrow"]


def test_the_data_period_is_the_first_and_last_order_date(tmp_path):
    """The run's data period (manifest and front page), from the clean orders' dates read by Arrow: the earliest and the
    latest day, whatever the time of day; none without orders."""
    import pandas as pd

    (tmp_path / "data").mkdir()
    orders = pd.DataFrame({"order_date": pd.to_datetime(["2024-03-04 23:59:59", "2024-01-02 00:00:01", None, "2024-02-10 12:00:00"]),
                           "net_amount": [1.0, 2.0, 3.0, 4.0]})
    orders.to_parquet(tmp_path / "data" / "orders.parquet", index=False)
    assert report._period(tmp_path) == "2024-01-02 to 2024-03-04"
    orders.head(0).to_parquet(tmp_path / "data" / "orders.parquet", index=False)
    assert report._period(tmp_path) is None
    (tmp_path / "data" / "orders.parquet").unlink()
    assert report._period(tmp_path) is None
