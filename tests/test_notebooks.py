"""Committed notebooks: no outputs, a `parameters` cell, one per section of the pipeline."""

import nbformat
import pytest

from tierbook.pipeline import SECTIONS

from .conftest import REPO

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def test_every_section_has_its_notebook_and_every_notebook_a_section():
    assert {s.notebook for s in SECTIONS} == {p.name for p in NOTEBOOKS}
    assert len({s.name for s in SECTIONS}) == len(SECTIONS)
    # SECTIONS is the reading order (the summary first); the runner schedules by depends_on, which
    # must name known sections without a cycle
    done, pending = set(), list(SECTIONS)
    while pending:
        ready = [s for s in pending if set(s.depends_on) <= done]
        assert ready, f"unknown dependency or a cycle among {[s.name for s in pending]}"
        done |= {s.name for s in ready}
        pending = [s for s in pending if s not in ready]
    # the summary reads every other section: as a dependency, or late (beside it, waiting for it to finish)
    summary = SECTIONS[0]
    assert summary.name == "summary" and summary.after_pages
    assert set(summary.depends_on) | set(summary.reads_later) == {s.name for s in SECTIONS[1:]}
    assert not set(summary.depends_on) & set(summary.reads_later)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name} has outputs: clear them"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_starts_with_a_title_and_a_parameters_cell(path):
    nb = nbformat.read(path, as_version=4)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0] is nb.cells[1]
    assert {"client", "run_dir", "project_root"} <= {line.split("=")[0].strip() for line in tagged[0].source.splitlines() if "=" in line}
