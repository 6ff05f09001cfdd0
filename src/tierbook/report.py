"""Runs: a versioned folder per ``make report``, sections executed by papermill, offline HTML,
``manifest.json`` and the ``latest`` link.

Layout of ``reports/<client>/<run-id>/``: ``index.html``, ``<section>.html``, ``notebooks/``
(executed), ``data/`` (clean Parquet tables), ``tables/`` (CSV results), ``rejected.csv``,
``params.yaml`` (merged), ``manifest.json``. A run is ``incomplete`` until it ends; only a run
whose sections all succeeded moves ``latest``; earlier runs are never touched.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import importlib.metadata
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import threading
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from . import i18n
from .errors import TierbookError, UpstreamFailed
from .html import export_section, write_client_index, write_index
from .params import Params, load_params, params_to_dict
from .pipeline import MARKS, SECTIONS, Section, by_priority, inputs_read, mark, mark_runner, section_named

PACKAGES = ["tierbook", "pandas", "numpy", "scipy", "matplotlib", "seaborn", "pyarrow", "pydantic", "papermill",
            "nbconvert", "ipykernel", "python-calamine", "openpyxl", "charset-normalizer", "ibis-framework", "duckdb", "sqlglot", "pyspark"]


@dataclass
class Project:
    """Where a project's params, data, notebooks and reports live (the repository root by default)."""

    root: Path
    notebooks_dir: Path | None = None

    def __post_init__(self):
        self.root = Path(self.root).resolve()
        if self.notebooks_dir is None:
            local = self.root / "notebooks"
            self.notebooks_dir = local if local.is_dir() else Path(__file__).resolve().parents[2] / "notebooks"

    @property
    def params_dir(self) -> Path:
        return self.root / "params"

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    def client_reports(self, client: str) -> Path:
        return self.reports_dir / client


def find_root(start: Path) -> Path:
    """The project root: the nearest folder at or above ``start`` with ``params/default.yaml``."""
    for folder in [start.resolve(), *start.resolve().parents]:
        if (folder / "params" / "default.yaml").exists():
            return folder
    raise TierbookError(f"{start}: not inside a Tierbook project (no params/default.yaml here or above)")


@dataclass
class SectionResult:
    name: str
    status: str = "pending"  # pending | succeeded | failed | skipped
    seconds: float = 0.0
    message: str = ""
    notebook: str | None = None
    html: str | None = None
    seconds_notebook: float | None = None  # executing the notebook (the rest is the HTML export)
    peak_memory_mib: int | None = None  # peak resident memory of the section's process (run.executor: fork)


@dataclass
class RunResult:
    run_dir: Path
    status: str
    sections: dict[str, SectionResult] = field(default_factory=dict)


def _say(message: str) -> None:
    print(message, flush=True)


def new_run_dir(client_dir: Path) -> Path:
    """A new, empty run folder named by the time (sortable), unique even for concurrent runs."""
    client_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")[:-3]
    for attempt in range(1000):
        candidate = client_dir / (stamp if attempt == 0 else f"{stamp}-{attempt:03d}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise TierbookError(f"{client_dir}: could not create a new run folder")


def runs_of(client_dir: Path) -> list[Path]:
    """Run folders of a client, oldest first."""
    if not client_dir.is_dir():
        return []
    return sorted(p for p in client_dir.iterdir() if p.is_dir() and not p.is_symlink() and (p / "manifest.json").exists())


def resolve_run(project: Project, client: str, run_dir: str | Path | None) -> Path:
    """The run folder a notebook works in: the given one, else the client's newest run."""
    if run_dir:
        return Path(run_dir).resolve()
    runs = runs_of(project.client_reports(client))
    if not runs:
        raise TierbookError(f"client {client!r} has no run yet; run `make report CLIENT={client}` first")
    return runs[-1]


def _git_state(root: Path) -> dict:
    def git(*args):
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)

    try:
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return {"commit": None, "dirty": None}
        dirty = git("status", "--porcelain", "--untracked-files=no")
        return {"commit": head.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.TimeoutExpired):
        return {"commit": None, "dirty": None}


def _versions() -> dict:
    out = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def _input_files(params: Params, root: Path) -> list[dict]:
    """The run's input files; their checksums come from the data section, which hashes each file as it reads it
    (``_finish``): hashed here as well, the 1M-customer demo's 694 MB held the data section's start back 0.6-2.0 s
    (13 s once, from disk; 2026-12-03)."""
    return [{"source": source.name, "table": source.table, "path": str(params.source_path(root, source)), "sha256": None}
            for _, source in params.sources.all()]


def _sha256_if_there(path: Path) -> str | None:
    from . import ingest

    try:
        return ingest.file_sha256(path)
    except OSError:
        return None


def _stamp(path: Path) -> tuple[int, int] | None:
    """A file's size and modification time (ns), None when it is gone: what any write to it changes."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


def _stamps(params: Params, root: Path) -> dict[str, tuple[int, int] | None]:
    """The input files' stamps, compared again when the run ends (``run_report``) instead of hashing every file again:
    the 860 MB of the 1M-customer demo took 2.3-4.5 s to hash at the end of its report (2026-12-02)."""
    paths = [params.source_path(root, source) for _, source in params.sources.all()]
    return {str(path): _stamp(path) for path in paths}


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    os.replace(tmp, path)


def _update_latest(client_dir: Path, run_dir: Path) -> None:
    """Point ``latest`` at run_dir unless a newer successful run already holds it (atomic, locked)."""
    with open(client_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        latest = client_dir / "latest"
        current = os.readlink(latest) if latest.is_symlink() else None
        if current is None or Path(current).name <= run_dir.name:
            tmp = client_dir / f".latest-{os.getpid()}"
            if tmp.is_symlink():
                tmp.unlink()
            os.symlink(run_dir.name, tmp)
            os.replace(tmp, latest)


def _client_index(client_dir: Path, params: Params) -> None:
    """Rewrite ``reports/<client>/index.html`` (the list of runs), one writer at a time."""
    with open(client_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        write_client_index(client_dir, params)


def _one_line(error: BaseException) -> str:
    """The cause of a failed section in plain words (the TierbookError line when there is one)."""
    ename = getattr(error, "ename", None)
    evalue = getattr(error, "evalue", None)
    if ename is not None:
        text = evalue if ename in (TierbookError.__name__, UpstreamFailed.__name__) else f"{ename}: {evalue}"
    else:
        text = str(error) if isinstance(error, TierbookError) else f"{type(error).__name__}: {error}"
    lines = [ln for ln in str(text).strip().splitlines() if ln.strip()]
    return lines[0] if lines else type(error).__name__


def _kernel_manager_class(log: Path | None = None):
    """Kernels talk to papermill over IPC sockets (local files), not unencrypted TCP ports.

    Each kernel gets its own private socket folder: jupyter_client's default IPC path is
    ``kernel-ipc-<n>`` in the working directory, and two kernels started at the same moment (two
    sections running in parallel) could pick the same ``n`` and read each other's messages
    ("Invalid Signature").

    The kernel's own messages (not the notebook's output, which papermill records) go to ``log``
    instead of the consultant's terminal: a kernel whose run was stopped says "Parent appears to have
    exited" there."""
    import shutil
    import tempfile

    from jupyter_client.manager import AsyncKernelManager

    class IPCKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs):
            kwargs.setdefault("transport", "ipc")
            self._socket_dir = tempfile.mkdtemp(prefix="tierbook-kernel-")  # mode 0700: only this user can connect
            kwargs.setdefault("ip", os.path.join(self._socket_dir, "ipc"))
            super().__init__(**kwargs)

        async def _async_launch_kernel(self, kernel_cmd, **kw):
            if log is not None and kw.get("stderr") is None:
                with open(log, "a", encoding="utf-8") as stream:  # the kernel keeps its own copy of the descriptor
                    kw["stderr"] = stream
                    return await super()._async_launch_kernel(kernel_cmd, **kw)
            return await super()._async_launch_kernel(kernel_cmd, **kw)

        async def _async_cleanup_resources(self, restart: bool = False) -> None:
            await super()._async_cleanup_resources(restart=restart)
            if not restart:
                shutil.rmtree(self._socket_dir, ignore_errors=True)

    return IPCKernelManager


def _execute_section(project: Project, params: Params, run_dir: Path, section: Section, on_outputs=None) -> SectionResult:
    """Execute a section's notebook and export its HTML: in a process forked from the fork server
    (``run.executor: fork``, tierbook.execute) or by papermill with a Jupyter kernel (``kernel``).
    ``on_outputs()`` is called when the section's outputs for later sections are written (pipeline.OUTPUTS_TAG;
    forked sections only)."""
    _sections_environment()  # the section's process (kernel, spawned or forked) inherits it
    if params.run.executor == "kernel":
        return _notebook_and_html(project, params, run_dir, section, _papermill)
    return _forked(project, params, run_dir, section, on_outputs)


def _papermill(project: Project, params: Params, source: Path, executed: Path, parameters: dict, on_outputs=None) -> None:
    """``on_outputs``: not called (a kernel's cells cannot say when they ran; the section's dependents wait for it to finish)."""
    import papermill

    papermill.execute_notebook(
        str(source), str(executed), parameters=parameters,
        kernel_name="python3", progress_bar=False, log_output=False, cwd=str(project.root),
        execution_timeout=params.run.cell_timeout_seconds,
        kernel_manager_class=_kernel_manager_class(executed.with_name(executed.stem + ".kernel.log")),
    )


def _in_this_process(project: Project, params: Params, source: Path, executed: Path, parameters: dict, on_outputs=None) -> None:
    from .execute import execute_notebook

    execute_notebook(source, executed, parameters, project.root, params.run.cell_timeout_seconds, on_outputs)


def _notebook_and_html(project: Project, params: Params, run_dir: Path, section: Section, execute, on_outputs=None) -> SectionResult:
    result = SectionResult(section.name)
    source = project.notebooks_dir / section.notebook
    executed = run_dir / "notebooks" / section.notebook
    executed.parent.mkdir(exist_ok=True)
    result.notebook = str(executed.relative_to(run_dir))
    started = time.perf_counter()
    try:
        execute(project, params, source, executed,
                {"client": params.client, "run_dir": str(run_dir), "project_root": str(project.root)}, on_outputs)
        result.seconds_notebook = round(time.perf_counter() - started, 2)
        html = run_dir / f"{section.name}.html"
        export_section(executed, html, section, SECTIONS, params, run_dir.name)
        result.html = html.name
        result.status = "succeeded"
        (run_dir / f"{section.name}.error.txt").unlink(missing_ok=True)  # from an earlier failed attempt
    except Exception as exc:  # noqa: BLE001 - any failure of a section is reported in one line
        # a section that waited for another one's outputs and learnt it failed (errors.UpstreamFailed) is skipped, as when
        # a dependency fails before it starts; any other error fails it
        result.status = "skipped" if getattr(exc, "ename", type(exc).__name__) == UpstreamFailed.__name__ else "failed"
        result.message = _one_line(exc)
        if result.status == "failed":
            (run_dir / f"{section.name}.error.txt").write_text("".join(traceback.format_exception(exc)), encoding="utf-8")
    kernel_log = executed.with_name(executed.stem + ".kernel.log")
    if kernel_log.exists() and kernel_log.stat().st_size == 0:
        kernel_log.unlink()
    result.seconds = round(time.perf_counter() - started, 2)
    return result


OUTPUTS_WRITTEN = "outputs-written"  # what a section's process sends when its outputs for later sections are written
_CHILDREN: set = set()  # sections' processes still running (killed when the run is interrupted)


def _fork_context():
    """multiprocessing's fork server with the libraries imported (tierbook.execute.WARM_MODULES): a
    fresh process that imports them once and forks a child per section. Not a fork of this process:
    a process that has already run OpenMP, DuckDB or Spark threads (a test session, a notebook)
    can leave its child waiting forever on a lock one of those threads held (seen: a k-means child
    of a pytest process that had run k-means, stuck in futex_wait)."""
    from .execute import WARM_MODULES

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(WARM_MODULES))
    return context


def _sections_environment() -> None:
    """What the sections' processes inherit, set before the first of them (or the fork server) starts.

    numpy asks the kernel for huge pages for each array of 4 MiB or more (madvise). On this 2-core VM a fault on such
    an array could then wait while the kernel made free 2 MiB pages (compaction): 0.35-0.6 s at times for a 40 MB
    array that otherwise takes 10-35 ms. Without (``NUMPY_MADVISE_HUGEPAGE=0``, read by numpy on import), the
    1M-customer data stage on its own took 69.6 and 65.2 s instead of 78.7 and 76.4 s, its kernel time 36 and 33 s
    instead of 56 and 44 s, and the whole report 182.8 and 160.8 s instead of 196.9 and 184.8 s, in runs one after
    another (2026-12-03, bench/RESULTS.md).

    Arrow's allocator (mimalloc) reserves its arenas of 1 GiB with the same madvise, so Arrow's buffers still came in huge
    pages, each fault zeroing 2 MiB, faulted again each time mimalloc gave a page back (10 ms after it was freed): perf
    showed a sixth of the 1M-customer data stage in zeroing huge pages. ``MIMALLOC_ALLOW_THP=0`` (read by mimalloc when
    Arrow loads) turns transparent huge pages off for the whole process (``prctl(PR_SET_THP_DISABLE)``, inherited by
    the sections forked from the fork server). In six pairs of 1M-customer reports the data section then peaked at
    3.22-3.28 GiB instead of 3.29-3.54 GiB (2 MiB pages held whole for a few bytes in use), the reports' wall and CPU
    times the same (medians of three, two batches: 132.9 and 137.0 s against 134.0 and 134.3 s; the second batch's CPU
    234-247 s against 233-253 s), 2026-12-03/04, bench/RESULTS.md. A value the consultant set is kept."""
    os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")
    os.environ.setdefault("MIMALLOC_ALLOW_THP", "0")


_FORK_SERVER_LOCK = threading.Lock()


def start_fork_server() -> None:
    """Start the fork server now (once per process, then reused); it imports the libraries in its own
    process, and the first section's fork waits until it has. Called again, it does nothing more."""
    with _FORK_SERVER_LOCK:
        _start_fork_server()


def _start_fork_server() -> None:
    from multiprocessing import forkserver

    _sections_environment()
    _fork_context()
    before = os.environ.get("MPLBACKEND")
    os.environ["MPLBACKEND"] = "Agg"  # the server imports pyplot without a screen; each section switches to the inline backend
    try:
        forkserver.ensure_running()
        # multiprocessing names the server's pid only in a private attribute (Python 3.8-3.13): read defensively, and
        # a Python without it runs the server at the usual priority
        _lower_priority(getattr(getattr(forkserver, "_forkserver", None), "_forkserver_pid", None))
    finally:  # not for this process's later kernels (run.executor: kernel), whose inline figures Agg would hide
        if before is None:
            del os.environ["MPLBACKEND"]
        else:
            os.environ["MPLBACKEND"] = before


FORK_SERVER_NICE = 10

# inputs of this many bytes or more (the files params declare): the fork server starts once the data section has read
# them (``_start_fork_server_after``), not beside the data section's reading
DEFER_FORK_SERVER_BYTES = 256 * 2**20


def _input_bytes(params: Params, root: Path) -> int:
    """The declared input files' bytes (0 for one not there yet, e.g. the demo's before it is generated)."""
    return sum(stamp[0] for stamp in _stamps(params, root).values() if stamp is not None)


def _start_fork_server_after(run_dir: Path, section: str, stop: threading.Event) -> threading.Thread:
    """Start the fork server once ``section`` (the data section) has read its inputs (its ``read`` mark, written by
    ``data.run_data_stage``) or has written its outputs, in a thread of this process; not when ``stop`` is set first
    (the run ended or failed before). The server imports the libraries (0.28 GiB, 13 s of one core at 1.4M customers):
    beside the data section reading the 10.1M lines and the members workbook, the report's peak was the data section's
    3.69 GiB plus the server's 0.28 and this process's 0.13 GiB (2026-12-04); started later it imports them beside the
    cleaning, which runs on one core."""

    def watch() -> None:
        marks = run_dir / MARKS
        while not stop.is_set():
            if any((marks / f"{section}.{state}").exists() for state in ("read", "written", "succeeded")):
                start_fork_server()
                return
            stop.wait(0.1)

    thread = threading.Thread(target=watch, name="tierbook-fork-server-start", daemon=True)
    thread.start()
    return thread


def _lower_priority(pid: int | None) -> None:
    """The fork server, and the sections forked from it, at a lower priority (nice 10) than this process and the spawned
    data section: the server imports the libraries (13 s of one core at the start of the 1M-customer report) while the
    data section reads its sources on both cores, and then takes a core the data section's cleaning leaves idle (for
    18 s, single-threaded) instead. The sections after it share the cores among themselves as before."""
    if pid is None:
        return
    try:
        os.setpriority(os.PRIO_PROCESS, pid, max(os.getpriority(os.PRIO_PROCESS, pid), FORK_SERVER_NICE))
    except (OSError, AttributeError):  # not on this system, or the server is gone: it runs as it is
        pass


def _forked(project: Project, params: Params, run_dir: Path, section: Section, on_outputs=None) -> SectionResult:
    """Run the section in a child of the fork server (``_fork_context``): it starts with the
    libraries imported instead of a kernel's start-up and imports; a section that depends on none, in a
    spawned process (below). The child says when the section's
    outputs are written (``on_outputs()`` is called then), and how the section went."""
    # a section that depends on none (the data section, the first) starts at once in a fresh process that imports what its
    # notebook needs (2.5 s of one core) instead of waiting for the fork server to import everything (about 5 s, and 7.7 s
    # in the 1M-customer report, whose checks ran beside it): the server goes on warming up for the later sections
    if section.depends_on:
        start_fork_server()  # when it has not started yet (``_start_fork_server_after``), now: its priority and settings
    context = _fork_context() if section.depends_on else multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    sys.stdout.flush()
    sys.stderr.flush()
    process = context.Process(target=_section_child, args=(send, project, params, run_dir, section), name=f"tierbook-{section.name}")
    started = time.perf_counter()
    process.start()
    _CHILDREN.add(process)
    send.close()
    try:
        data = receive.recv()
        while data == OUTPUTS_WRITTEN:
            if on_outputs is not None:
                on_outputs()
            data = receive.recv()
    except EOFError:  # the child died before it could say how the section went (killed, out of memory)
        data = None
    process.join()
    _CHILDREN.discard(process)
    if data is None:
        executed = run_dir / "notebooks" / section.notebook
        return SectionResult(section.name, "failed", round(time.perf_counter() - started, 2),
                             f"the section's process ended without a result (exit code {process.exitcode}; "
                             f"a negative code is the signal that ended it, -9 often means out of memory)",
                             notebook=str(executed.relative_to(run_dir)))
    return SectionResult(**data)


def _section_child(send, project: Project, params: Params, run_dir: Path, section: Section) -> None:
    import ctypes
    import resource
    import signal

    try:
        # PR_SET_PDEATHSIG: end with the fork server, which ends when the run's process does
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)
    except OSError:
        pass
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    code = 0
    try:
        log = run_dir / "notebooks" / (Path(section.notebook).stem + ".kernel.log")
        log.parent.mkdir(exist_ok=True)
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)  # what libraries write to the terminal below Python (C code, warnings at exit) goes to the log
        os.dup2(fd, 2)
        os.close(fd)
        result = _notebook_and_html(project, params, run_dir, section, _in_this_process, on_outputs=lambda: send.send(OUTPUTS_WRITTEN))
        result.peak_memory_mib = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        send.send(result.__dict__)
    except BaseException:  # noqa: BLE001 - the parent reports a section without a result as failed
        code = 1
    finally:
        os._exit(code)


def kill_sections() -> None:
    """End the sections' processes now (the run was interrupted)."""
    for process in list(_CHILDREN):
        process.kill()


def _run_sections(project: Project, params: Params, run_dir: Path, sections: list[Section],
                  results: dict[str, SectionResult], on_done, fork_server_after: str | None = None) -> None:
    """Run sections as their dependencies finish or write their outputs (``pipeline``), ``run.parallel`` at a time.
    ``fork_server_after``: the section (the data section) whose reading of the inputs the fork server, not started yet, waits
    for (``_start_fork_server_after``); None when it is started already."""
    import queue

    pending = {s.name: s for s in by_priority(sections)}
    events: queue.Queue = queue.Queue()  # (name, result): the section is done; (name, None): its outputs are written
    written: set[str] = set()
    pool = ThreadPoolExecutor(max_workers=params.run.parallel)
    mark_runner(run_dir)  # the record sections waiting on others' outputs read (pipeline.wait_for)
    stop = threading.Event()
    if fork_server_after is not None:
        _start_fork_server_after(run_dir, fork_server_after, stop)

    def run(section: Section) -> None:
        try:
            result = _execute_section(project, params, run_dir, section, on_outputs=lambda: events.put((section.name, None)))
        except BaseException as exc:  # noqa: BLE001 - raised in the loop below
            result = exc
        events.put((section.name, result))

    def state(name: str, section: Section) -> str:
        if name in results:
            return results[name].status
        return "succeeded" if name in written and not section.after_pages else "pending"

    try:
        running: set[str] = set()
        while pending or running:
            changed = True
            while changed:  # from the top after each start: the free slots go to the costliest chains first
                changed = False
                for name, section in list(pending.items()):
                    deps = [state(d, section) for d in section.depends_on]
                    if any(s in ("failed", "skipped") for s in deps):
                        results[name] = SectionResult(name, "skipped", message="an upstream section failed")
                        mark(run_dir, name, "skipped")
                        del pending[name]
                        on_done(results[name])
                        changed = True
                        break
                    if not all(s == "succeeded" for s in deps) or len(running) >= params.run.parallel:
                        continue
                    # a section read late starts first (then this one, with the next free slot): waiting for one that
                    # has not started would hold a slot it may need
                    later = [pending[r] for r in section.reads_later if r in pending]
                    start = section if not later else next((r for r in later if all(state(d, r) == "succeeded" for d in r.depends_on)), None)
                    if start is None:
                        continue
                    _say(f"  ▶ {start.name:<14} running")
                    pool.submit(run, start)
                    running.add(start.name)
                    del pending[start.name]
                    changed = True
                    break
            if not running:
                continue
            name, result = events.get()
            if result is None:
                written.add(name)
                mark(run_dir, name, "written")
                continue
            if isinstance(result, BaseException):
                raise result
            running.discard(name)
            results[name] = result
            mark(run_dir, name, result.status)
            on_done(result)
    except BaseException:
        # interrupted (Ctrl-C, SIGTERM): do not wait for the running notebooks; forked sections are
        # killed, kernels end with this process (ipykernel watches its parent)
        stop.set()
        kill_sections()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    stop.set()
    pool.shutdown(wait=True)


def _report_section(result: SectionResult, run_dir: Path) -> None:
    if result.status == "succeeded":
        _say(f"  ✓ {result.name:<14} {result.seconds:6.1f} s")
    elif result.status == "skipped":
        _say(f"  - {result.name:<14} skipped: {result.message}")
    else:
        _say(f"  ✗ {result.name:<14} {result.seconds:6.1f} s  {result.message}  (details: {run_dir / result.notebook})")


def _period(run_dir: Path) -> str | None:
    path = run_dir / "data" / "orders.parquet"
    if not path.exists():
        return None
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    extremes = pc.min_max(pq.read_table(path, columns=["order_date"]).column("order_date"))
    if not extremes["min"].is_valid:
        return None
    low, high = (pc.strftime(extremes[end], format="%Y-%m-%d").as_py() for end in ("min", "max"))
    return f"{low} to {high}"


def _finish(run_dir: Path, manifest: dict, params: Params, results: dict[str, SectionResult]) -> None:
    shutil.rmtree(run_dir / MARKS, ignore_errors=True)  # the sections' record for one another (pipeline.wait_for)
    manifest["sections"] = {
        name: {"status": r.status, "seconds": r.seconds, "seconds_notebook": r.seconds_notebook, "message": r.message,
               "notebook": r.notebook, "html": r.html, "peak_memory_mib": r.peak_memory_mib}
        for name, r in results.items()
    }
    read = inputs_read(run_dir)
    for rec in manifest["inputs"]:
        done = read.get(rec["source"], {})
        if read:
            rec["rows"] = done.get("rows")
        # the checksum of the file the data section read; of the file as it is now when the data section did not get to it
        rec["sha256"] = done.get("sha256") or rec.get("sha256") or _sha256_if_there(Path(rec["path"]))
    manifest["data_period"] = _period(run_dir)
    manifest["status"] = "succeeded" if all(r.status == "succeeded" for r in results.values()) else "failed"
    manifest["ended_at"] = dt.datetime.now().isoformat(timespec="seconds")
    import resource

    manifest["peak_memory_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)  # this process (sections: their own)
    write_index(run_dir, manifest, SECTIONS, params)
    _write_json(run_dir / "manifest.json", manifest)


def _ensure_demo(params: Params, root: Path) -> None:
    """The demo client's data made when missing (``demo.ensure``), in the checks' process (``run_report``)."""
    from . import demo

    demo.ensure(params.data_dir(root), params.demo.size, params.demo.seed, params.demo.purchase_rate)


def _check_sources(params: Params, root: Path) -> None:
    """``ingest.check_sources`` in the checks' process (``run_report``): a TierbookError comes back to the runner as it
    was raised."""
    from . import ingest

    ingest.check_sources(params, root)


def run_report(project: Project, client: str, overrides: list[str] | None = None, today: dt.date | None = None) -> RunResult:
    """``make report``: validate params and inputs, then run every section into a new run folder."""
    started = time.perf_counter()
    params = load_params(client, project.params_dir, overrides)
    # large inputs: the fork server starts once the data section has read them (_start_fork_server_after)
    deferred = params.run.executor == "fork" and _input_bytes(params, project.root) >= DEFER_FORK_SERVER_BYTES
    if params.run.executor == "fork" and not deferred:
        # the server imports the libraries (13 s of one core) while this process checks the inputs on the other: started
        # after the checks, the 1M-customer report's data section waited for it 14 s after 14 s of checks (2026-12-02)
        start_fork_server()
    # the demo's data made and the inputs checked in a process of their own: this one imports neither pandas nor Arrow and
    # waits for the sections with 0.1 GiB less than when it did them (the runner's share of the report's peak at 10.1M lines
    # was 0.13-0.17 GiB, 2026-12-04)
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as checker:
        if params.demo.generate:
            _say(f"demo data: {params.data_dir(project.root)} (size {params.demo.size}, seed {params.demo.seed}, "
                 f"purchase rate {params.demo.purchase_rate:g} a week)")
            checker.submit(_ensure_demo, params, project.root).result()
        stamps = _stamps(params, project.root)  # before the inputs are read: a change from now to the end fails the run
        checker.submit(_check_sources, params, project.root).result()
    inputs = _input_files(params, project.root)

    client_dir = project.client_reports(client)
    run_dir = new_run_dir(client_dir)
    (run_dir / "params.yaml").write_text(yaml.safe_dump(params_to_dict(params), allow_unicode=True, sort_keys=False), encoding="utf-8")
    manifest = {
        "client": client, "run_id": run_dir.name, "status": "incomplete",
        "started_at": dt.datetime.now().isoformat(timespec="seconds"), "ended_at": None,
        "today": str(today or dt.date.today()), **_git_state(project.root), "params": params_to_dict(params),
        "inputs": inputs, "versions": _versions(), "sections": {},
    }
    _write_json(run_dir / "manifest.json", manifest)
    _client_index(client_dir, params)
    _say(f"run {run_dir}")
    results: dict[str, SectionResult] = {}
    try:
        _run_sections(project, params, run_dir, list(SECTIONS), results, lambda r: _report_section(r, run_dir),
                      fork_server_after="data" if deferred else None)
    except BaseException:
        manifest["status"] = "interrupted"
        manifest["ended_at"] = dt.datetime.now().isoformat(timespec="seconds")
        manifest["sections"] = {name: {"status": r.status, "seconds": r.seconds, "message": r.message}
                                for name, r in results.items()}
        _write_json(run_dir / "manifest.json", manifest)
        _client_index(client_dir, params)
        _say(f"interrupted: {run_dir}")
        raise
    changed = [path for path, stamp in stamps.items() if _stamp(Path(path)) != stamp]
    if changed:
        results["data"].status = "failed"
        results["data"].message = f"input file changed while the run read it: {changed[0]}; run again when it is stable"
    _finish(run_dir, manifest, params, results)
    if manifest["status"] == "succeeded":
        _update_latest(client_dir, run_dir)
    _client_index(client_dir, params)
    _say(f"{manifest['status']} in {time.perf_counter() - started:.1f} s: {run_dir / 'index.html'}")
    return RunResult(run_dir, manifest["status"], results)


def run_section(project: Project, client: str, name: str) -> RunResult:
    """``make section``: re-run one section in the client's newest run, on its upstream outputs."""
    section = section_named(name)
    run_dir = resolve_run(project, client, None)
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    for dep in section.depends_on:
        if manifest["sections"].get(dep, {}).get("status") != "succeeded":
            raise TierbookError(f"section {name!r} needs {dep!r}, which did not succeed in run {run_dir.name}; run `make report CLIENT={client}`")
    params = Params.model_validate(manifest["params"])
    _say(f"run {run_dir} (re-running {name})")
    result = _execute_section(project, params, run_dir, section)
    _report_section(result, run_dir)
    results = {n: SectionResult(n, **{k: v for k, v in rec.items()}) for n, rec in manifest["sections"].items()}
    results[name] = result
    manifest.setdefault("reruns", []).append({"section": name, "at": dt.datetime.now().isoformat(timespec="seconds"), "status": result.status})
    _finish(run_dir, manifest, params, results)
    if manifest["status"] == "succeeded":
        _update_latest(project.client_reports(client), run_dir)
    _client_index(project.client_reports(client), params)
    return RunResult(run_dir, manifest["status"], results)


def open_run(client: str, run_dir: str | Path | None = None, project_root: str | Path | None = None) -> tuple[Params, Path, Path]:
    """For notebooks: the run's merged params, its folder and the project root.

    Under ``make report`` papermill passes ``run_dir``; opened by hand in JupyterLab the notebook
    works in the client's newest run.
    """
    project = Project(Path(project_root) if project_root else find_root(Path.cwd()))
    folder = resolve_run(project, client, run_dir)
    params = Params.model_validate(json.loads((folder / "manifest.json").read_text(encoding="utf-8"))["params"])
    i18n.use_params(params, folder)
    return params, folder, project.root
