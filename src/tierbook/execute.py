"""Executing a section's notebook without a Jupyter kernel: in a process forked from
multiprocessing's fork server, which has imported the heavy libraries once (``WARM_MODULES``;
``report._fork_context``).

Why: a kernel per notebook costs its start-up plus every import again (pandas, matplotlib,
seaborn, scipy, scikit-learn, lifelines, statsmodels): 5-10 s a section, 60-75 s of a 400-customer
demo report's 108 s (measured 2026-12-02, ``bench/report_time.py``). A forked child shares the
server's imported modules copy-on-write and starts in milliseconds.

The notebook is the same file an analyst opens in JupyterLab: papermill injects the parameters
(``papermill.parameterize.parameterize_notebook``, the ``injected-parameters`` cell after the
``parameters`` cell), each code cell runs in an IPython ``InteractiveShell`` with the inline
matplotlib backend, and its outputs are recorded as a kernel would (stream, display_data,
execute_result, error), with papermill's cell metadata (``duration``, ``status``). ``run.executor:
kernel`` runs papermill with a real kernel instead.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import sys
import time
from pathlib import Path

# jsonschema (which nbformat imports) imports rfc3987_syntax when it is installed (JupyterLab's dependencies bring it), and
# that builds the grammar of its IRI format checker on import: 1.8 s of the 13 s in which the fork server imports the
# libraries below, before the first section can start (python -X importtime, 2026-12-02). Neither nbformat's schema nor
# tierbook checks IRIs, so the sections' processes go without that checker (jsonschema skips it when the import fails).
sys.modules.setdefault("rfc3987_syntax", None)

# imported once by the fork server, after this module: each section's process starts with them loaded
WARM_MODULES = (
    "tierbook.execute",
    "pandas", "numpy", "scipy.stats", "scipy.optimize", "matplotlib.pyplot", "seaborn", "sklearn.cluster",
    "sklearn.linear_model", "sklearn.ensemble", "sklearn.metrics", "statsmodels.api", "lifelines", "pyarrow.parquet",
    "IPython", "matplotlib_inline.backend_inline", "nbformat", "nbconvert", "papermill.iorw", "papermill.parameterize",
    "tierbook.plots", "tierbook.plots_profile", "tierbook.tables", "tierbook.data", "tierbook.segmentation",
    "tierbook.valuation", "tierbook.satisfaction", "tierbook.churn", "tierbook.experiment", "tierbook.profile",
    "tierbook.tags", "tierbook.executive", "tierbook.privacy", "ibis", "ibis.backends.duckdb", "tierbook.engine",
)


class CellError(Exception):
    """A cell raised: ``ename``/``evalue`` as in a kernel's error message (report._one_line reads them)."""

    def __init__(self, ename: str, evalue: str, cell_index: int):
        super().__init__(f"{ename}: {evalue}")
        self.ename, self.evalue, self.cell_index = ename, evalue, cell_index


class CellTimeout(Exception):
    pass


class _Stream:
    """sys.stdout / sys.stderr of a cell: text goes into the cell's outputs, merged per stream as
    Jupyter does."""

    def __init__(self, outputs: list, name: str):
        self.outputs, self.name = outputs, name

    def write(self, text: str) -> int:
        import nbformat

        if not text:
            return 0
        if self.outputs and self.outputs[-1].get("output_type") == "stream" and self.outputs[-1]["name"] == self.name:
            self.outputs[-1]["text"] += text
        else:
            self.outputs.append(nbformat.v4.new_output("stream", name=self.name, text=text))
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self) -> str:
        return "utf-8"


_SHELL = None


def _shell(outputs_ref: list):
    """An InteractiveShell whose displays and results go into ``outputs_ref[0]`` (the current
    cell's list); one per process, its namespace emptied for each notebook."""
    global _SHELL
    import nbformat
    from IPython.core.displayhook import DisplayHook
    from IPython.core.displaypub import DisplayPublisher
    from IPython.core.interactiveshell import InteractiveShell

    class Publisher(DisplayPublisher):
        def publish(self, data, metadata=None, source=None, *, transient=None, update=False, **kwargs):
            outputs_ref[0].append(nbformat.v4.new_output("display_data", data=data, metadata=metadata or {}))

        def clear_output(self, wait=False):
            outputs_ref[0].clear()

    class Hook(DisplayHook):
        def write_output_prompt(self):
            pass

        def write_format_data(self, format_dict, md_dict=None):
            outputs_ref[0].append(nbformat.v4.new_output("execute_result", data=format_dict, metadata=md_dict or {},
                                                         execution_count=self.prompt_count))

        def finish_displayhook(self):
            pass

    class Shell(InteractiveShell):
        def enable_gui(self, gui=None):  # no event loop: figures are only rendered (inline backend)
            pass

    if _SHELL is None:
        _SHELL = Shell.instance()
        _SHELL.enable_matplotlib("inline")
        # pyplot's own post-cell hook draws every stale figure (a full Agg draw), and then the inline backend's draws each
        # again into its PNG and closes it: the first draw was thrown away, 3.2 s of the 1.4M-customer report's 254 s of
        # CPU (py-spy, 2026-12-05); the figures' PNGs are the same without it
        import matplotlib.pyplot as plt

        plt.uninstall_repl_displayhook()
        _SHELL._showtraceback = lambda *args, **kwargs: None  # the error goes into the cell's outputs, not the terminal
    else:
        _SHELL.reset(new_session=False)
    shell = _SHELL
    shell.display_pub = Publisher(shell=shell)
    shell.displayhook = shell.display_trap.hook = Hook(shell=shell, cache_size=0)  # the trap sets sys.displayhook in run_cell
    return shell


def _on_timeout(signum, frame):
    raise CellTimeout()


def execute_notebook(source: Path, executed: Path, parameters: dict, cwd: Path, timeout: int | None = None,
                     on_outputs=None) -> None:
    """Run ``source`` with ``parameters`` in this process and write the executed notebook to
    ``executed`` (also when a cell fails: then with the error output, and CellError is raised).
    ``on_outputs()`` is called once the cell tagged ``outputs-written`` (pipeline.OUTPUTS_TAG) has run
    without an error: the section's outputs for later sections are written."""
    from .pipeline import OUTPUTS_TAG

    import nbformat
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    nb = load_notebook_node(str(source))  # as papermill reads it (every cell gets metadata.tags)
    nb = parameterize_notebook(nb, parameters, kernel_name="python3", language="python")
    os.chdir(cwd)
    outputs_ref: list = [[]]
    shell = _shell(outputs_ref)
    streams = sys.stdout, sys.stderr
    if timeout:
        signal.signal(signal.SIGALRM, _on_timeout)
    count = 0
    failed: CellError | None = None
    try:
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            cell.metadata["papermill"] = {"start_time": None, "end_time": None, "duration": None, "status": "pending",
                                          "exception": None}
            if failed is not None:
                continue
            count += 1
            outputs_ref[0] = cell.outputs = []
            sys.stdout, sys.stderr = _Stream(cell.outputs, "stdout"), _Stream(cell.outputs, "stderr")
            started = time.perf_counter()
            cell.metadata.papermill["start_time"] = dt.datetime.now(dt.timezone.utc).isoformat()
            if timeout:
                signal.alarm(int(timeout))
            try:
                shell.execution_count = count
                result = shell.run_cell(cell.source, store_history=False, silent=False)
            finally:
                if timeout:
                    signal.alarm(0)
                sys.stdout, sys.stderr = streams
            error = result.error_before_exec or result.error_in_exec
            cell.execution_count = count
            cell.metadata.papermill.update(end_time=dt.datetime.now(dt.timezone.utc).isoformat(),
                                           duration=round(time.perf_counter() - started, 6), status="completed")
            if error is not None:
                ename = "CellTimeout" if isinstance(error, CellTimeout) else type(error).__name__
                evalue = f"a cell ran longer than run.cell_timeout_seconds ({timeout} s)" if isinstance(error, CellTimeout) else str(error)
                import traceback

                cell.outputs.append(nbformat.v4.new_output("error", ename=ename, evalue=evalue,
                                                           traceback=traceback.format_exception(error)))
                cell.metadata.papermill.update(status="failed", exception=True)
                failed = CellError(ename, evalue, index)
            elif on_outputs is not None and OUTPUTS_TAG in cell.metadata.get("tags", []):
                on_outputs()
    finally:
        sys.stdout, sys.stderr = streams
        executed.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, str(executed))
    if failed is not None:
        raise failed
