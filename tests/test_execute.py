"""Sections executed in a forked process (run.executor: fork, tierbook.execute) against papermill
with a kernel (run.executor: kernel)."""

import json
import shutil

import nbformat
import pytest

from tierbook import report
from tierbook.params import load_params
from tierbook.pipeline import Section, section_named

from .conftest import REPO


def _notebook(folder, name, *cells):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell('client = "demo"\nrun_dir = None\nproject_root = None')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# Test"), params, *[nbformat.v4.new_code_cell(c) for c in cells]]
    nbformat.write(nb, str(folder / name))
    return Section(name.removesuffix(".ipynb"), name, "Test")


@pytest.fixture
def bare(tmp_path):
    """A project whose notebooks folder holds test notebooks; params of the demo client."""
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "run").mkdir()
    project = report.Project(tmp_path, notebooks_dir=tmp_path / "notebooks")
    return project, tmp_path / "run"


def _params(*overrides):
    return load_params("demo", REPO / "params", list(overrides))


def test_outputs_are_recorded_as_a_kernel_records_them(bare):
    project, run = bare
    section = _notebook(project.notebooks_dir, "t.ipynb",
                        'print("one")\nfrom IPython.display import Markdown, display\ndisplay(Markdown("**two**"))\nprint("three")',
                        "import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\n_ = ax.plot([1, 2], [3, 4])",
                        "import pandas as pd\npd.DataFrame({'a': [1]})",
                        "x = 41 + 1")
    result = report._execute_section(project, _params(), run, section)
    assert result.status == "succeeded", result.message
    assert result.peak_memory_mib > 50 and (run / "t.html").exists()
    nb = json.loads((run / "notebooks" / "t.ipynb").read_text(encoding="utf-8"))
    cells = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert [c["metadata"]["tags"] for c in cells[:2]] == [["parameters"], ["injected-parameters"]]
    assert f'run_dir = "{run}"' in "".join(cells[1]["source"])
    printed, figure, table, silent = cells[2:]
    assert [(o["output_type"], o.get("name") or sorted(o["data"])) for o in printed["outputs"]] == [
        ("stream", "stdout"), ("display_data", ["text/markdown", "text/plain"]), ("stream", "stdout")]
    assert "".join(printed["outputs"][0]["text"]) == "one\n" and "".join(printed["outputs"][2]["text"]) == "three\n"
    assert [o["output_type"] for o in figure["outputs"]] == ["display_data"] and "image/png" in figure["outputs"][0]["data"]
    assert table["outputs"][0]["output_type"] == "execute_result" and "text/html" in table["outputs"][0]["data"]
    assert silent["outputs"] == [] and silent["metadata"]["papermill"]["status"] == "completed"
    assert [c["execution_count"] for c in cells] == [1, 2, 3, 4, 5, 6]


def test_a_failing_cell_fails_the_section_in_one_line_and_stops_the_notebook(bare):
    project, run = bare
    section = _notebook(project.notebooks_dir, "bad.ipynb", "a = 1", "raise ValueError('the as_of is before every order')", "b = 2")
    result = report._execute_section(project, _params(), run, section)
    assert result.status == "failed" and result.message == "ValueError: the as_of is before every order"
    nb = json.loads((run / "notebooks" / "bad.ipynb").read_text(encoding="utf-8"))
    failing, after = nb["cells"][-2], nb["cells"][-1]
    assert failing["outputs"][-1]["output_type"] == "error" and failing["metadata"]["papermill"]["status"] == "failed"
    assert after["outputs"] == [] and after["metadata"]["papermill"]["status"] == "pending"
    assert "Traceback" in (run / "bad.error.txt").read_text(encoding="utf-8") and not (run / "bad.html").exists()


def test_a_section_whose_process_dies_fails_with_its_exit_code(bare):
    project, run = bare
    section = _notebook(project.notebooks_dir, "killed.ipynb", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")
    result = report._execute_section(project, _params(), run, section)
    assert result.status == "failed"
    assert result.message.startswith("the section's process ended without a result (exit code -9;")


def test_a_cell_over_the_timeout_fails_the_section(bare):
    project, run = bare
    section = _notebook(project.notebooks_dir, "slow.ipynb", "import time\ntime.sleep(60)")
    result = report._execute_section(project, _params("run.cell_timeout_seconds=10"), run, section)
    assert result.status == "failed" and result.message == "CellTimeout: a cell ran longer than run.cell_timeout_seconds (10 s)"
    assert 9 < result.seconds < 40


@pytest.mark.slow
def test_kernel_and_fork_give_the_same_section(demo_project, tmp_path):
    """The rfm section of the demo run again with papermill and a kernel: the same outputs."""
    project, first = demo_project
    run = tmp_path / first.run_dir.name
    shutil.copytree(first.run_dir, run)
    params = load_params("demo", project.params_dir, ["demo.size=400", "run.executor=kernel"])
    result = report._execute_section(project, params, run, section_named("rfm"))
    assert result.status == "succeeded", result.message

    def outputs(path):
        nb = json.loads(path.read_text(encoding="utf-8"))
        return [[(o["output_type"], o.get("data", {}).get("text/markdown") or sorted(o.get("data", {}))) for o in c["outputs"]]
                for c in nb["cells"] if c["cell_type"] == "code"][2:]  # after the parameters (the run folder differs)

    kernel, forked = outputs(run / "notebooks" / "02_rfm.ipynb"), outputs(first.run_dir / "notebooks" / "02_rfm.ipynb")
    assert kernel == forked



@pytest.mark.parametrize("fails", [False, True])
def test_the_cell_tagged_outputs_written_says_so_before_the_notebook_ends(bare, fails):
    """The forked section tells the runner when the cell tagged OUTPUTS_TAG has run (its dependents start then), not
    when it fails; the cells after it still run and the section's result comes after."""
    import time

    from tierbook.pipeline import OUTPUTS_TAG

    project, run = bare
    section = _notebook(project.notebooks_dir, "w.ipynb", "x = 1", "raise ValueError('no outputs')" if fails else "y = 2",
                        "import time\ntime.sleep(1.0)")
    nb = nbformat.read(str(project.notebooks_dir / "w.ipynb"), as_version=4)
    nb.cells[3].metadata["tags"] = [OUTPUTS_TAG]
    nbformat.write(nb, str(project.notebooks_dir / "w.ipynb"))
    said = []
    result = report._execute_section(project, _params(), run, section, on_outputs=lambda: said.append(time.perf_counter()))
    ended = time.perf_counter()
    if fails:
        assert result.status == "failed" and said == []
    else:
        assert result.status == "succeeded", result.message
        assert len(said) == 1 and ended - said[0] > 0.9, "said once, before the last cell's second"


def test_a_figure_is_drawn_once_into_its_picture(bare):
    # pyplot's post-cell hook drew every figure before the inline backend drew it again into its PNG (3.2 s of CPU in a
    # 1.4M-customer report); the two draws counted here are the picture's own: its tight bounding box measured by a draw
    # that renders nothing (matplotlib's print_figure), then the rendering
    project, run = bare
    section = _notebook(project.notebooks_dir, "t.ipynb",
                        "import matplotlib.pyplot as plt\ndraws = []\nfig, ax = plt.subplots()\n_ = ax.plot([1, 2], [3, 4])\n"
                        "_ = fig.canvas.mpl_connect('draw_event', lambda event: draws.append(event))",
                        "print(len(draws), plt.get_fignums())")
    result = report._execute_section(project, _params(), run, section)
    assert result.status == "succeeded", result.message
    nb = json.loads((run / "notebooks" / "t.ipynb").read_text(encoding="utf-8"))
    figure, counted = [c for c in nb["cells"] if c["cell_type"] == "code"][2:]
    assert "image/png" in figure["outputs"][0]["data"]
    assert "".join(counted["outputs"][0]["text"]) == "2 []\n"
