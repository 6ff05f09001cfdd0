"""Runs as a consultant's machine sees them: two reports of one client started at once, a run
killed half-way (SIGKILL: nothing can clean up) and one stopped with SIGTERM (Ctrl-C alike).
Earlier runs and ``latest`` are never touched, the inputs never change, and every run is listed
with what became of it."""

import json
import re
import signal
import subprocess
import sys
import time

import pytest

from .conftest import REPO, demo_files, tree_digest


def _start(root, *extra):
    return subprocess.Popen([sys.executable, "-m", "tierbook", "--root", str(root), "report", "--client", "demo",
                             "--set", "demo.size=400", *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _run_folders(client_dir):
    return sorted(p.name for p in client_dir.iterdir() if p.is_dir() and not p.is_symlink())


def _until_data_is_done(process) -> str:
    """Read the run's progress lines until the data section has succeeded; return the run folder."""
    run = None
    for line in process.stdout:
        if line.startswith("run "):
            run = line.split()[1]
        if line.strip().startswith("✓ data"):
            return run
    raise AssertionError(f"the run ended before its data section succeeded: {process.stderr.read()[-2000:]}")


def _status(client_dir, run_id):
    return json.loads((client_dir / run_id / "manifest.json").read_text(encoding="utf-8"))


@pytest.mark.slow
def test_concurrent_runs_complete_and_killed_runs_leave_everything_else_intact(tmp_path):
    demo_files(tmp_path, 400)
    (tmp_path / "notebooks").symlink_to(REPO / "notebooks")
    data, client_dir = tmp_path / "data" / "demo", tmp_path / "reports" / "demo"
    inputs = tree_digest(data)

    # two runs of one client at once: both complete, in distinct folders; latest ends at the newer
    first = _start(tmp_path)
    while not client_dir.is_dir() or not _run_folders(client_dir):
        time.sleep(0.2)
    second = _start(tmp_path)
    outcomes = [p.communicate(timeout=1200) for p in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], [o[1][-1500:] for o in outcomes]
    older, newer = _run_folders(client_dir)
    assert [_status(client_dir, r)["status"] for r in (older, newer)] == ["succeeded", "succeeded"]
    assert (client_dir / "latest").resolve().name == newer
    finished = {r: tree_digest(client_dir / r) for r in (older, newer)}

    # killed half-way, with no chance to clean up: its folder stays marked incomplete
    killed = _start(tmp_path)
    killed_run = _until_data_is_done(killed).rsplit("/", 1)[-1]
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=60)
    assert _status(client_dir, killed_run)["status"] == "incomplete"

    # stopped with SIGTERM: one line, exit code 130, marked interrupted with what it had done
    stopped = _start(tmp_path)
    stopped_run = _until_data_is_done(stopped).rsplit("/", 1)[-1]
    stopped.send_signal(signal.SIGTERM)
    _, err = stopped.communicate(timeout=120)
    assert stopped.returncode == 130
    assert err.strip().splitlines() == ["interrupted: the run's folder is kept and marked interrupted; latest and earlier runs are unchanged"]
    manifest = _status(client_dir, stopped_run)
    assert manifest["status"] == "interrupted" and manifest["sections"]["data"]["status"] == "succeeded"

    assert (client_dir / "latest").resolve().name == newer
    assert {r: tree_digest(client_dir / r) for r in (older, newer)} == finished
    assert tree_digest(data) == inputs  # byte for byte, after four runs
    listing = (client_dir / "index.html").read_text(encoding="utf-8")  # newest first, each with what became of it
    assert re.findall(r'<td class="tb-([a-z]+)">', listing) == ["interrupted", "incomplete", "succeeded", "succeeded"]
