"""Security: paths from params stay in the project (or an explicitly allowed data root), YAML is
loaded safely, params values reach the notebooks as data, and strings from client data or params
are shown as text in the HTML, never run."""

import html.parser
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from tierbook.errors import TierbookError
from tierbook.html import escape_markup, export_section
from tierbook.params import load_params
from tierbook.pipeline import SECTIONS

from .conftest import REPO, demo_files, write_params

MINIMAL = """
sources:
  transactions:
    - name: pos
      path: {path}
      columns: {{id: customer_id, date: order_date, amount: amount}}
"""


@pytest.fixture
def params_dir(tmp_path) -> Path:
    (tmp_path / "params").mkdir()
    shutil.copy(REPO / "params" / "default.yaml", tmp_path / "params" / "default.yaml")
    return tmp_path / "params"


def _load(params_dir: Path, text: str, overrides=None):
    write_params(params_dir.parent, "acme", text)
    return load_params("acme", params_dir, overrides)


@pytest.mark.parametrize("path, problem", [
    ("../secrets.csv", "contains '..'"),
    ("sub/../../secrets.csv", "contains '..'"),
    ("/etc/passwd", "is outside the project"),
    ("~/orders.csv", "is outside the project"),
])
def test_a_source_path_cannot_leave_the_data_folder(params_dir, path, problem):
    with pytest.raises(TierbookError) as error:
        _load(params_dir, MINIMAL.format(path=path))
    message = str(error.value)
    assert message.startswith(f"{params_dir / 'acme.yaml'}: sources.transactions[0].path (source 'pos') = {path!r} {problem}")
    assert "set paths.data_root to the absolute folder" in message and "\n" not in message


def test_paths_inside_the_data_folder_or_an_allowed_data_root_are_read(params_dir, tmp_path):
    params = _load(params_dir, MINIMAL.format(path="exports/2025/orders.csv"))
    assert params.source_path(params_dir.parent, params.sources.transactions[0]) == \
        params_dir.parent / "data" / "acme" / "exports" / "2025" / "orders.csv"
    shared = tmp_path.parent / "shared-drive"
    text = MINIMAL.format(path=shared / "acme" / "orders.csv") + f"paths:\n  data: {shared / 'acme'}\n  data_root: {shared}\n"
    params = _load(params_dir, text)
    assert params.source_path(params_dir.parent, params.sources.transactions[0]) == shared / "acme" / "orders.csv"
    with pytest.raises(TierbookError, match=r"paths.data = '.*' is outside the project or paths.data_root"):
        _load(params_dir, MINIMAL.format(path="orders.csv") + f"paths:\n  data: {tmp_path.parent / 'elsewhere'}\n  data_root: {shared}\n")


def test_a_data_folder_outside_the_project_needs_a_data_root(params_dir, tmp_path):
    outside = tmp_path.parent / "client-exports"
    with pytest.raises(TierbookError) as error:
        _load(params_dir, MINIMAL.format(path="orders.csv") + f"paths:\n  data: {outside}\n")
    assert str(error.value) == (f"{params_dir / 'acme.yaml'}: paths.data = {str(outside)!r} is outside the project; move the files "
                                f"under {params_dir.parent} or set paths.data_root to the absolute folder that holds the client's "
                                "data to allow it")
    with pytest.raises(TierbookError, match=r"^--set: paths.data = '../other' contains '..'"):
        _load(params_dir, MINIMAL.format(path="orders.csv"), ["paths.data=../other"])
    with pytest.raises(TierbookError, match=r"paths.data_root = 'relative/folder' must be an absolute folder"):
        _load(params_dir, MINIMAL.format(path="orders.csv") + "paths:\n  data_root: relative/folder\n")


def test_a_data_folder_linked_to_a_shared_drive_is_allowed(params_dir, tmp_path):
    """The check is on what params say: data/acme may be a symbolic link to another disk."""
    target = tmp_path.parent / "nas-acme"
    target.mkdir(exist_ok=True)
    (params_dir.parent / "data").mkdir()
    (params_dir.parent / "data" / "acme").symlink_to(target)
    params = _load(params_dir, MINIMAL.format(path="orders.csv"))
    assert params.source_path(params_dir.parent, params.sources.transactions[0]).parent == target.resolve()


def test_paths_data_takes_no_placeholder_but_client(params_dir):
    with pytest.raises(TierbookError, match=r"may only use the placeholder \{client\}; remove \{client.__class__\}"):
        _load(params_dir, MINIMAL.format(path="orders.csv") + "paths:\n  data: 'data/{client.__class__}'\n")


def test_yaml_is_loaded_safely(params_dir, tmp_path):
    marker = tmp_path / "pwned"
    text = MINIMAL.format(path="orders.csv") + f"title: !!python/object/apply:os.system ['touch {marker}']\n"
    with pytest.raises(TierbookError) as error:
        _load(params_dir, text)
    assert "not valid YAML" in str(error.value) and str(params_dir / "acme.yaml") in str(error.value)
    assert not marker.exists()


def test_generated_sentences_show_markup_from_data_as_text():
    assert escape_markup("Top store: <script>alert(1)</script>, p < 0.001") == \
        "Top store: &lt;script>alert(1)&lt;/script>, p &lt; 0.001"
    assert escape_markup('<img src=x onerror="alert(1)"> 重要价值客户') == '&lt;img src=x onerror="alert(1)"> 重要价值客户'
    alarm = '<div class="tb-alert">⚠ <strong>Sample ratio mismatch (all):</strong> see below</div>'
    assert escape_markup(alarm) == alarm  # the tags Tierbook writes itself stay
    assert escape_markup('<div onclick="x">') == '&lt;div onclick="x">'


class _Markup(html.parser.HTMLParser):
    """Every element and event-handler attribute of a page."""

    def __init__(self):
        super().__init__()
        self.tags, self.handlers, self.hrefs, self.text = [], [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.handlers += [(tag, k, v) for k, v in attrs if k.startswith("on")]
        self.hrefs += [v for k, v in attrs if k in ("href", "src") and v]

    def handle_data(self, data):
        self.text.append(data)


def _markup(page: str) -> _Markup:
    parser = _Markup()
    parser.feed(page)
    return parser


def test_exported_html_runs_no_markup_from_outputs(tmp_path):
    """A notebook whose outputs carry hostile data is exported with that data as text."""
    from tierbook.params import Params

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("display(...)")
    cell.outputs = [
        nbformat.v4.new_output("display_data", data={"text/markdown": "Best store **<img src=x onerror=alert(1)>**; "
                                                                       "see [the list](javascript:alert(2)) and <script>alert(3)</script>"}),
        nbformat.v4.new_output("display_data", data={"text/plain": "<svg onload=alert(4)>"}),
    ]
    nb.cells = [nbformat.v4.new_markdown_cell("# Data"), cell]
    source = tmp_path / "section.ipynb"
    nbformat.write(nb, str(source))
    params = Params.model_validate(json.loads(json.dumps({
        **load_params("demo", REPO / "params").model_dump(mode="json"), "title": '</title><script>alert(5)</script>'})))
    target = tmp_path / "data.html"
    export_section(source, target, SECTIONS[1], SECTIONS, params, "20260101-000000-000")
    page = target.read_text(encoding="utf-8")
    markup = _markup(page)
    assert markup.handlers == []
    assert not any(h.startswith("javascript:") for h in markup.hrefs)
    assert "#harmful-link" in markup.hrefs  # the javascript: link is inert
    assert "alert(1)" in page and "alert(3)" in page and "alert(5)" in page  # shown as text
    assert "<script>alert" not in page and "<img src=x" not in page and "<svg onload" not in page


HOSTILE_TITLE = """Acme "quoted" 'single' \\"; __import__('os').system('touch {marker}') #"""


@pytest.mark.slow
def test_hostile_params_and_data_are_shown_never_run(tmp_path):
    """A whole demo report with hostile strings everywhere a client or consultant can put one:
    the title (quotes and __import__), a tier name, a segment label, store and category values in
    the data. Nothing runs; every string is on the pages as text."""
    marker = tmp_path / "PWNED"
    params, _, _ = demo_files(tmp_path, 400)
    orders = params.source_path(tmp_path, params.sources.transactions[0])
    frame = pd.read_csv(orders, dtype=str, keep_default_na=False)
    frame.loc[frame.index % 3 == 0, "platform"] = "<script>alert('store')</script>"
    frame.loc[frame.index % 2 == 0, "category"] = "<img src=x onerror=alert('category')>"
    frame.to_csv(orders, index=False)
    (tmp_path / "notebooks").symlink_to(REPO / "notebooks")
    title = HOSTILE_TITLE.format(marker=marker)
    demo = (tmp_path / "params" / "demo.yaml").read_text(encoding="utf-8").replace("generate: true", "generate: false")
    demo += "\n".join([
        "title: " + json.dumps(title),
        "tiers:",
        "  levels:",
        '    - {name: "VIP <b onmouseover=alert(\'tier\')>", zh: VIP客户, top_share: 0.05}',
        "    - {name: Regular, zh: 普通客户, top_share: 0.50}",
        "    - {name: Potential, zh: 潜在客户}",
        "rfm:",
        "  segments_8:",
        '    HHH: {zh: 重要价值客户, en: "<img src=x onerror=alert(\'segment\')>", action: "Keep"}',
    ]) + "\n"
    (tmp_path / "params" / "demo.yaml").write_text(demo, encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "tierbook", "--root", str(tmp_path), "report", "--client", "demo",
                           "--set", "demo.size=400"], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert not marker.exists()
    run = tmp_path / "reports" / "demo" / "latest"
    pages = ["index.html", "../index.html"] + [f"{s.name}.html" for s in SECTIONS]
    text = {}
    for name in pages:
        page = (run / name).read_text(encoding="utf-8")
        markup = _markup(page)
        assert markup.handlers == [], f"{name}: {markup.handlers[:3]}"
        assert "<script>alert" not in page and "<img src=x" not in page and "<b onmouseover" not in page, name
        assert "script" not in markup.tags, name  # the pages have no script at all
        text[name] = "".join(markup.text)
    # the hostile strings are on the pages, as text: the title on every page, the tier name in the
    # tables, the segment label on the RFM page, the category among the profile's tags
    assert [name for name in pages if title not in text[name]] == []
    assert "VIP <b onmouseover=alert('tier')>" in text["rfm.html"] and "VIP <b onmouseover=alert('tier')>" in text["profile.html"]
    assert "<img src=x onerror=alert('segment')>" in text["rfm.html"]
    assert "<img src=x onerror=alert('category')>" in text["profile.html"]
    for notebook in (run / "notebooks").glob("*.ipynb"):  # the executed notebooks got only the run's folder and client
        parameters = next(c for c in nbformat.read(notebook, as_version=4).cells if "injected-parameters" in c.metadata.get("tags", []))
        assert "__import__" not in parameters.source and "client = \"demo\"" in parameters.source
    assert os.listdir(tmp_path / "data" / "demo")  # the inputs are still there (checked byte for byte by the run)


def _calls(tree) -> list[tuple[str, int]]:
    """Every call in a module as (dotted name, line): ``pickle.load``, ``eval``, ``yaml.load`` ..."""
    import ast

    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            parts, func = [], node.func
            while isinstance(func, ast.Attribute):
                parts.append(func.attr)
                func = func.value
            if isinstance(func, ast.Name):
                parts.append(func.id)
            out.append((".".join(reversed(parts)), node.lineno, node))
    return out


def test_no_code_path_can_run_or_unpickle_what_a_client_provides():
    """No eval/exec/compile, no pickle/joblib/read_pickle, no yaml.load without SafeLoader, no
    shell=True in the package or the notebooks; every yaml load is safe_load."""
    import ast

    forbidden = {"eval", "exec", "compile", "pickle.load", "pickle.loads", "joblib.load", "pd.read_pickle", "pandas.read_pickle",
                 "yaml.load", "yaml.unsafe_load", "yaml.full_load", "marshal.loads", "__import__"}
    sources = {p: p.read_text(encoding="utf-8") for p in (REPO / "src" / "tierbook").rglob("*.py")}
    for notebook in (REPO / "notebooks").glob("*.ipynb"):
        sources[notebook] = "\n".join(c.source for c in nbformat.read(notebook, as_version=4).cells if c.cell_type == "code")
    found, yaml_loads = [], 0
    for path, text in sources.items():
        for name, line, node in _calls(ast.parse(text)):
            if name in forbidden:
                found.append(f"{path.name}:{line} {name}")
            if any(k.arg == "shell" and getattr(k.value, "value", False) is True for k in node.keywords):
                found.append(f"{path.name}:{line} shell=True")
            yaml_loads += name == "yaml.safe_load"
    assert found == []
    assert yaml_loads >= 2  # params and the catalogs: the scan does see the calls it looks for
