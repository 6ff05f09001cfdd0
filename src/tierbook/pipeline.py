"""The report's sections, in order. Adding a section is a notebook in ``notebooks/``, one line
here, and its helpers (with tests) in ``src/tierbook``.

``depends_on`` names the sections whose outputs (in the run folder) a section reads; sections whose
dependencies are done run in parallel, up to ``run.parallel`` at a time, the costliest chain of sections
behind them first (``by_priority``).

A dependency is done for a section as soon as its outputs are written: when the notebook's cell tagged
``outputs-written`` (OUTPUTS_TAG, the cell that calls the section's stage function) has run, while the
rest of that notebook (figures, tables, its HTML page) is still running. A section with
``after_pages=True`` (the summary, which sums up a run only when every section succeeded) waits until its
dependencies have finished. Under ``run.executor: kernel`` every section waits for its dependencies to finish.

``reads_later`` names sections whose outputs a section reads only late in its stage: it starts once
``depends_on`` are done and those sections have started, and waits for their outputs where it reads
them (``wait_for``; with ``after_pages``, until they have finished). Churn reads only the clv columns of
customer_scores, for its at-risk list: it runs beside clv instead of after it, and when clv fails it goes
on without them. The summary writes the CRM files (every column of rfm, clv, churn and profile) beside
the last of satisfaction and ab_test, then waits for them; when one of them fails it stops
(``errors.UpstreamFailed``) and the runner reports it skipped.
"""

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Section:
    name: str  # the SECTION= of `make section`, and the stem of its HTML file
    notebook: str  # file in notebooks/
    title: str  # shown on the index and in the navigation bar
    depends_on: tuple[str, ...] = ()
    cost: float = 1.0  # its share of a report's time, for the order in which ready sections start (by_priority)
    after_pages: bool = False  # waits until its dependencies have finished, not only written their outputs
    reads_later: tuple[str, ...] = ()  # sections whose outputs it reads late in its stage, waiting there (wait_for)


# the tag of the notebook cell after which a section's outputs for later sections are written
OUTPUTS_TAG = "outputs-written"


# cost: the section's seconds in the 1M-customer demo report on a 2-core machine (medians of 3, bench/RESULTS.md, 2026-12-02 evening);
# only their ratios matter
SECTIONS: tuple[Section, ...] = (
    # the summary writes the CRM files first (profile.export_scores: the columns of rfm, clv, churn and profile), beside
    # the last of satisfaction and ab_test, then waits for them to finish before it reads their tables
    Section("summary", "00_summary.ipynb", "Executive summary", depends_on=("data", "rfm", "profile", "clv", "churn"), cost=5,
            after_pages=True, reads_later=("satisfaction", "ab_test")),
    Section("data", "01_data.ipynb", "Data: ingestion and cleaning", cost=84),
    Section("rfm", "02_rfm.ipynb", "RFM, segments and tiers", depends_on=("data",), cost=16),
    # profile reads rfm's tiers and segments; its columns of customer_scores are joined in by the summary section, which
    # writes the CRM files, so it runs beside clv and churn (they rewrite customer_scores) rather than after them
    Section("profile", "07_profile.ipynb", "Customer profiles and tags", depends_on=("rfm",), cost=30),
    Section("clv", "03_clv.ipynb", "Customer lifetime value", depends_on=("rfm",), cost=22),
    Section("satisfaction", "04_satisfaction.ipynb", "Satisfaction (NPS and CSAT)", depends_on=("clv",), cost=10),
    # churn reads clv's p_alive and clv only for its at-risk list, after its models (wait_for)
    Section("churn", "05_churn.ipynb", "Churn", depends_on=("rfm",), cost=39, reads_later=("clv",)),
    Section("ab_test", "06_ab_test.ipynb", "A/B test of tier strategies", depends_on=("rfm",), cost=22),
)


def chain_cost(name: str, sections: tuple[Section, ...] = SECTIONS) -> float:
    """The cost of ``name`` and of the costliest chain of sections waiting on it, to the end of the report."""
    section = next(s for s in sections if s.name == name)
    after = [chain_cost(s.name, sections) for s in sections if name in s.depends_on]
    return section.cost + max(after, default=0.0)


def by_priority(sections: list[Section] | tuple[Section, ...]) -> list[Section]:
    """The order in which sections that are ready take a free slot: the costliest chain to the end of the report first,
    then as listed. When clv is done, churn (51 s at 1M customers) starts before satisfaction (19 s): in the listed
    order satisfaction took the one free slot and churn, on the way to the end, started 18 s later (2026-12-02)."""
    sections = tuple(sections)
    return sorted(sections, key=lambda s: -chain_cost(s.name, sections))


def section_named(name: str) -> Section:
    for section in SECTIONS:
        if section.name == name:
            return section
    from .errors import TierbookError

    raise TierbookError(f"unknown section {name!r}; sections: {', '.join(s.name for s in SECTIONS)}")


# --------------------------------------------------------------------------- sections reading others' outputs late

MARKS = ".sections"  # in the run folder while the report runs: what each section has done so far (removed at the end)


def mark_runner(run_dir: Path | None) -> None:
    """Record that this process runs the report's sections (``wait_for`` waits only while it is alive)."""
    if run_dir is not None:
        (Path(run_dir) / MARKS).mkdir(exist_ok=True)
        (Path(run_dir) / MARKS / "runner.pid").write_text(str(os.getpid()))


def mark(run_dir: Path | None, name: str, state: str) -> None:
    """Record that section ``name`` has written its outputs (``written``) or ended (``succeeded``, ``failed``,
    ``skipped``), for sections waiting on it (``wait_for``)."""
    if run_dir is not None:
        (Path(run_dir) / MARKS / f"{name}.{state}").touch()


def _alive(pid_file: Path) -> bool:
    try:
        os.kill(int(pid_file.read_text()), 0)
    except (OSError, ValueError):
        return False
    return True


def wait_for(run_dir: Path, name: str, poll: float = 0.1, finished: bool = False) -> bool:
    """Whether section ``name``'s outputs are in the run folder, once they are: while the report runs it beside this
    section, wait until it has written them (True) or ended without (False); with ``finished``, until it has ended
    (True when it succeeded). A section run on its own, or after the report (its runner gone), reads the folder as it
    is (True when ``name`` wrote its outputs or no record says not)."""
    marks = Path(run_dir) / MARKS
    while True:
        if not marks.is_dir() or (marks / f"{name}.succeeded").exists() or (not finished and (marks / f"{name}.written").exists()):
            return True
        if (marks / f"{name}.failed").exists() or (marks / f"{name}.skipped").exists():
            return False
        if not _alive(marks / "runner.pid"):
            return True
        time.sleep(poll)


INPUTS_FILE = "inputs.json"  # in a run folder: the data section's record of each file it read (``data._write``)


def inputs_read(run_dir: Path) -> dict[str, dict]:
    """The data section's record of each input file it read (source, path, sha256, rows ...), by source name; empty
    when it has not written one (a run that stopped before, an older run). Here, not in ``ingest``: the report's runner
    reads it and imports no pandas."""
    path = Path(run_dir) / INPUTS_FILE
    return {rec["source"]: rec for rec in json.loads(path.read_text(encoding="utf-8"))} if path.exists() else {}
