"""The report in Chinese (lang: zh): the catalog is complete and consistent, and translation
reaches markdown, generated sentences, figures and tables without touching data values."""

import ast
import json
import re
from pathlib import Path

import matplotlib
import pandas as pd
import pytest

from tierbook import i18n, tables
from tierbook.pipeline import SECTIONS

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src" / "tierbook"
CJK = re.compile(r"[\u4e00-\u9fff\u3000-\u303f\uff00-\uffef]")  # ideographs and full-width punctuation


@pytest.fixture(autouse=True)
def english_afterwards():
    yield
    i18n.set_lang("en")


def test_catalog_has_one_translation_per_text_with_the_same_placeholders():
    seen = {}
    for path, en, zh in i18n.entries("zh"):
        assert en not in seen or seen[en] == zh, f"{path.name}: {en!r} translated twice, differently (also in {seen.get(en)!r})"
        seen[en] = zh
        assert i18n.placeholders(en) == i18n.placeholders(zh), f"{path.name}: placeholders differ for {en!r}"
        assert CJK.search(zh), f"{path.name}: the translation of {en!r} has no Chinese"


def _literals_passed_to_underscore(tree) -> list[str]:
    out = []
    for node in ast.walk(tree):
        func = getattr(node, "func", None)
        called = (isinstance(func, ast.Name) and func.id == "_") or (isinstance(func, ast.Attribute) and func.attr == "_")
        if isinstance(node, ast.Call) and called and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                out.append(first.value.strip())
    return out


def _code_texts() -> dict[str, list[str]]:
    """Every literal the code passes to ``_`` (modules, notebooks' code cells, templates)."""
    found = {}
    for path in sorted(SRC.glob("*.py")):
        found[path.name] = _literals_passed_to_underscore(ast.parse(path.read_text(encoding="utf-8")))
    for path in sorted((REPO / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        found[path.name] = _literals_passed_to_underscore(ast.parse(code))
    for path in sorted((SRC / "templates").glob("*.j2")):
        found[path.name] = [m.strip() for m in re.findall(r'_\("((?:[^"\\]|\\.)*)"', path.read_text(encoding="utf-8"))]
    return found


def test_every_text_the_code_translates_is_in_the_catalog():
    zh = i18n.catalog("zh")
    missing = [f"{where}: {text!r}" for where, texts in _code_texts().items() for text in texts if text not in zh]
    assert not missing, f"{len(missing)} texts without a Chinese translation (add them to src/tierbook/locales/zh/):\n" + "\n".join(missing[:40])


def test_every_markdown_cell_and_section_title_is_in_the_catalog():
    zh = i18n.catalog("zh")
    missing = []
    for path in sorted((REPO / "notebooks").glob("*.ipynb")):
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            text = "".join(cell["source"]).strip()
            if cell["cell_type"] == "markdown" and re.search(r"[A-Za-z]{3,}", text) and text not in zh:
                missing.append(f"{path.name}: {text[:70]!r}")
    missing += [f"section title {s.title!r}" for s in SECTIONS if s.title not in zh]
    assert not missing, f"{len(missing)} without a Chinese translation:\n" + "\n".join(missing)


def test_translation_fills_placeholders_after_translating_and_logs_misses(tmp_path):
    log = tmp_path / "missing.txt"
    i18n.set_lang("zh", {"VIP": "VIP客户"}, log)
    assert i18n._("First {shown} of {total:,} rows", shown=25, total=12345) == "前 25 行，共 12,345 行"
    assert i18n._("Not a catalog text") == "Not a catalog text"
    assert i18n.name("VIP") == "VIP客户" and i18n.name("华东") == "华东" and i18n.name(3.5) == 3.5
    assert log.read_text(encoding="utf-8") == "Not a catalog text\n"  # name() never logs: data values are not code text
    i18n.set_lang("en")
    assert i18n._("First {shown} of {total:,} rows", shown=25, total=12345) == "First 25 of 12,345 rows"


def test_figures_translate_code_text_and_tier_names_but_not_numbers_or_data():
    i18n.set_lang("zh", {"VIP": "VIP客户", "Regular": "普通客户"})
    fig, ax = plt.subplots()
    ax.bar(["VIP", "Regular", "华东"], [1, 2, 3], label="Churn")
    ax.set(title="Customer lifetime value", xlabel="Net revenue", ylabel="1,000")
    ax.legend()
    i18n.translate_figure(fig)
    assert ax.get_title() == "客户终身价值（CLV）" and ax.get_xlabel() == "净销售额" and ax.get_ylabel() == "1,000"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["VIP客户", "普通客户", "华东"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["客户流失"]
    assert ax.get_yticklabels()[1].get_text() == ax.yaxis.get_major_formatter()(ax.get_yticks()[1])  # numbers untouched
    plt.close(fig)


def test_without_a_cjk_font_figures_stay_in_english():
    i18n.set_lang("zh")
    i18n.keep_figures_in_english()
    fig, ax = plt.subplots()
    ax.set_title("Customer lifetime value")
    assert i18n.translate_figure(fig).axes[0].get_title() == "Customer lifetime value"
    plt.close(fig)


def test_tables_translate_headers_and_tier_names_and_escape_data():
    frame = pd.DataFrame({"tier": ["VIP", "<b>x</b>"], "customers": [10, 20]})
    i18n.set_lang("zh", {"VIP": "VIP客户"})
    page = tables.styled(frame, labels={"customers": "Customers"}).to_html()
    assert "客户数" in page and "VIP客户" in page and "&lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page
    i18n.set_lang("en")
    page = tables.styled(frame, labels={"customers": "Customers"}).to_html()
    assert "Customers" in page and "VIP客户" not in page


def test_markdown_cells_are_translated_whole():
    assert i18n.translate_markdown("## Nope", "zh") == "## Nope"
    misses = []
    i18n.translate_markdown("## Nope", "zh", on_miss=misses.append)
    assert misses == ["## Nope"]
    assert i18n.translate_markdown("# Executive summary · 执行摘要\n", "zh") == "# 执行摘要"


ALLOWED = {  # names of methods, measures and file formats that stay in Latin letters in a Chinese report
    "NPS", "CSAT", "CLV", "RFM", "CRM", "TGI", "VIP", "CSV", "SRM", "CUPED", "ROI", "MDE", "SMD", "OLS", "AUC", "BG/NBD", "NBD",
    "Pareto", "Gamma", "Holm", "Bonferroni", "Benjamini", "Hochberg", "Wilson", "Kaplan", "Meier", "Cox", "Spearman", "Welch", "Wald",
    "k-means", "means", "Tierbook", "P(alive)", "alive", "demo", "synthetic", "retailer", "Demo", "run",
    "control",  # data: the demo experiment's arm is called control in its file
}


@pytest.mark.slow
def test_the_chinese_report_has_no_untranslated_text(demo_zh):
    """Every text the code or the notebooks write reached the zh report translated (misses are logged
    to i18n_missing.txt), and no heading, table header or caption of any page is in English."""
    run, _ = demo_zh
    assert run.status == "succeeded"
    missing = run.run_dir / "i18n_missing.txt"
    assert not missing.exists(), "untranslated:\n" + missing.read_text(encoding="utf-8")[:3000]
    offenders = []
    for page in ["index.html", "../index.html"] + [f"{s.name}.html" for s in SECTIONS]:
        text = (run.run_dir / page).read_text(encoding="utf-8")
        for tag in ("h1", "h2", "h3", "th", "caption", "title"):
            for inner in re.findall(rf"<{tag}\b[^>]*>(.*?)</{tag}>", text, re.S):
                visible = re.sub(r"<[^>]+>|&[a-z]+;|¶", " ", inner)
                visible = re.sub(r"\S*[_/.]\S*", " ", visible)  # file names, params keys and data columns (revenue_30d)
                words = [w for w in re.findall(r"[A-Za-z][A-Za-z/()_-]{3,}", visible) if w not in ALLOWED and w.strip("()") not in ALLOWED]
                if words:
                    offenders.append(f"{page} <{tag}>: {visible.strip()[:80]!r}")
    assert not offenders, f"{len(offenders)} English headings:\n" + "\n".join(offenders[:40])
