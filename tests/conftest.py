import hashlib
import shutil
from pathlib import Path

import pytest

SMALL = ["demo.size=400"]

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real-data test: {SHARED_DATA} is absent (the shared datasets sit beside the repository)")
    return SHARED_DATA


@pytest.fixture
def project(tmp_path) -> Path:
    """An empty project folder with the repository's default params and notebooks."""
    (tmp_path / "params").mkdir()
    shutil.copy(REPO / "params" / "default.yaml", tmp_path / "params" / "default.yaml")
    (tmp_path / "notebooks").symlink_to(REPO / "notebooks")
    return tmp_path


def params_and_run_dir(root: Path, client: str, text: str, overrides: list[str] | None = None):
    """A project at ``root`` with the default params and ``params/<client>.yaml``; returns the
    validated params and an empty run folder."""
    from tierbook.params import load_params

    (root / "params").mkdir(exist_ok=True)
    shutil.copy(REPO / "params" / "default.yaml", root / "params" / "default.yaml")
    write_params(root, client, text)
    run_dir = root / "run"
    run_dir.mkdir()
    return load_params(client, root / "params", overrides), run_dir


def demo_files(root: Path, size: int):
    """A project at ``root`` with the default and demo params, the demo data generated at ``size``
    customers, and an empty ``run`` folder; returns (params, run folder, the demo's TRUTH)."""
    from tierbook.demo import ensure
    from tierbook.params import load_params

    (root / "params").mkdir()
    for name in ("default.yaml", "demo.yaml"):
        shutil.copy(REPO / "params" / name, root / "params" / name)
    params = load_params("demo", root / "params", [f"demo.size={size}"])
    truth = ensure(params.data_dir(root), size, params.demo.seed)
    run = root / "run"
    run.mkdir()
    return params, run, truth


def write_params(project: Path, client: str, text: str) -> Path:
    path = project / "params" / f"{client}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def demo_project(tmp_path_factory):
    """A temporary project with the demo params and one successful small demo run."""
    from tierbook.report import Project, run_report

    root = tmp_path_factory.mktemp("project")
    (root / "params").mkdir()
    for name in ("default.yaml", "demo.yaml"):
        shutil.copy(REPO / "params" / name, root / "params" / name)
    (root / "notebooks").symlink_to(REPO / "notebooks")
    project = Project(root)
    first = run_report(project, "demo", SMALL)
    return project, first


def tree_digest(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="session")
def demo_zh(demo_project):
    """A second run of the same demo data with ``lang: zh``: (its RunResult, digest of the first
    run's folder taken just before it)."""
    from tierbook.report import run_report

    project, first = demo_project
    before = tree_digest(first.run_dir)
    return run_report(project, "demo", SMALL + ["lang=zh"]), before
