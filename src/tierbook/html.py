"""Stakeholder HTML: sections exported from executed notebooks with code hidden and no network
requests (images embedded, no require.js / MathJax / mermaid / widget scripts), and the run's
front page. See ``templates/``."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import os
import re
from pathlib import Path

import jinja2

from . import i18n

TEMPLATES = Path(__file__).parent / "templates"


def _css() -> str:
    return (TEMPLATES / "report.css").read_text(encoding="utf-8")


def _brand(params) -> str:
    return params.title or f"Tierbook report: {params.client}"


def section_title(section, lang: str) -> str:
    return i18n.gettext(section.title, lang)


_H2 = re.compile(r'<h2 id="([^"]+)"[^>]*>(.*?)</h2>', re.S)


def add_toc(page: str, lang: str) -> str:
    """A table of contents (the page's h2 headings) under the page's first h1; none for fewer than two."""
    headings = [(anchor, re.sub(r"<[^>]+>|¶", "", inner).strip()) for anchor, inner in _H2.findall(page)]
    if len(headings) < 2 or "</h1>" not in page:
        return page
    items = "".join(f'<li><a href="#{anchor}">{text}</a></li>' for anchor, text in headings)  # text is already HTML
    toc = f'<nav class="tb-toc"><b>{i18n.gettext("Contents", lang)}</b><ol>{items}</ol></nav>'
    at = page.index("</h1>")
    end = page.find("</div>", at)  # after the heading's markdown cell, so the cell's intro text stays with the title
    end = at + len("</h1>") if end < 0 else end
    return page[:end] + toc + page[end:]


# Tags that sentences generated from the numbers may use (the A/B page's sample-ratio alarm). Any other
# "<" in a generated sentence came from data (a store, a segment label, a tag) and is shown as text.
_ALLOWED_TAG = re.compile(r'</?(?:strong|em|b|i|br|div(?: class="tb-[a-z-]+")?|span(?: class="tb-[a-z-]+")?)\s*/?>')


def escape_markup(markdown: str) -> str:
    """A generated markdown sentence made safe to render: every ``<`` that does not start one of the
    few tags Tierbook writes itself becomes ``&lt;``, so data such as ``<img src=x onerror=...>`` or
    ``<script>`` is displayed, never run. (nbconvert renders markdown with raw HTML allowed.)"""
    out, at = [], 0
    for match in re.finditer("<", markdown):
        start = match.start()
        out.append(markdown[at:start])
        allowed = _ALLOWED_TAG.match(markdown, start)
        out.append(allowed.group(0) if allowed else "&lt;")
        at = allowed.end() if allowed else start + 1
    out.append(markdown[at:])
    return "".join(out)


def _safe_exporter_class():
    """nbconvert's HTML exporter with links to harmful protocols (``javascript:``, ``vbscript:``,
    ``data:``) rendered inert: a data value like ``[x](javascript:alert(1))`` in a sentence is no link."""
    from jinja2 import pass_context
    from nbconvert import HTMLExporter
    from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

    class SafeHTMLExporter(HTMLExporter):
        @pass_context
        def markdown2html(self, context, source):
            cell = context.get("cell", {})
            renderer = IPythonRenderer(
                escape=False, allow_harmful_protocols=False, attachments=cell.get("attachments", {}),
                embed_images=self.embed_images, path=context.get("resources", {}).get("metadata", {}).get("path", ""),
                anchor_link_text=self.anchor_link_text, exclude_anchor_links=self.exclude_anchor_links, **self.lexer_options)
            return MarkdownWithMath(renderer=renderer).render(source)

    return SafeHTMLExporter


def export_section(notebook: Path, html: Path, section, sections, params, run_id: str) -> None:
    """Write the section's HTML next to the run's index, with a navigation bar between sections,
    a table of contents, and its markdown in ``params.lang``."""
    import nbformat
    from nbconvert.preprocessors import TagRemovePreprocessor
    from traitlets.config import Config

    lang = params.lang
    nb = nbformat.read(str(notebook), as_version=4)
    missing = []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = i18n.translate_markdown(cell.source, lang, on_miss=missing.append)
        else:
            for output in cell.get("outputs", []):
                if "text/markdown" in output.get("data", {}):
                    output["data"]["text/markdown"] = escape_markup(output["data"]["text/markdown"])
    if missing:
        with open(html.parent / "i18n_missing.txt", "a", encoding="utf-8") as fh:
            fh.writelines(text.replace("\n", "\\n") + "\n" for text in missing)
    config = Config()
    config.TagRemovePreprocessor.remove_cell_tags = {"remove_cell", "parameters", "injected-parameters"}
    config.TagRemovePreprocessor.remove_all_outputs_tags = {"remove_output"}
    exporter = _safe_exporter_class()(config=config, template_name="tierbook", extra_template_basedirs=[str(TEMPLATES)])
    exporter.exclude_input = True
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    exporter.embed_images = True
    exporter.language_code = "zh-CN" if lang == "zh" else "en"
    nb.metadata["title"] = f"{section_title(section, lang)} · {_brand(params)}"
    exporter.register_preprocessor(TagRemovePreprocessor(config=config), enabled=True)
    nav = [{"href": f"{s.name}.html", "title": section_title(s, lang), "current": s.name == section.name} for s in sections]
    resources = {"tierbook": {
        "css": _css(), "brand": _brand(params), "nav": nav,
        "meta": i18n.gettext("{client} · run {run_id} · {title}", lang).format(client=params.client, run_id=run_id,
                                                                           title=section_title(section, lang)),
    }}
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    body = add_toc(body, lang)
    tmp = html.with_suffix(".html.tmp")
    tmp.write_text(body, encoding="utf-8")
    tmp.replace(html)


def _env(lang: str) -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True)
    env.globals["_"] = lambda text, **fields: i18n.gettext(text, lang).format(**fields) if fields else i18n.gettext(text, lang)
    return env


def _write(path: Path, page: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)


def _run_date(run_id: str) -> str:
    """``20261123-061435-415`` -> ``2026-11-23 06:14``."""
    return f"{run_id[:4]}-{run_id[4:6]}-{run_id[6:8]} {run_id[9:11]}:{run_id[11:13]}"


def _period(period: str | None, lang: str) -> str:
    """The manifest's data period (``2024-01-01 to 2025-12-31``) in the page's language."""
    if not period or " to " not in period:
        return period or ""
    start, end = period.split(" to ", 1)
    return i18n.gettext("{start} to {end}", lang).format(start=start, end=end)


def _comparison(run_dir: Path, params) -> dict | None:
    """KPI cards of this run against the previous successful run, and the tier migration since it."""
    from .executive import build_cards, previous_run, tier_migration, tier_names

    kpis_path = run_dir / "kpis.json"
    if not kpis_path.exists():
        return None
    kpis = json.loads(kpis_path.read_text(encoding="utf-8"))
    prev = previous_run(run_dir)
    before = prev[1] if prev else None
    cards = build_cards(kpis, before, params)
    out = {"cards": cards, "previous": prev[0].name if prev else None, "previous_date": _run_date(prev[0].name) if prev else None,
           "migration": None}
    if prev is not None:
        order = [level.name for level in params.tiers.levels]
        table = tier_migration(run_dir, prev[0], order)
        if table is not None:
            names = tier_names(params)
            label = lambda t: names.get(t, i18n.gettext(t, params.lang))  # noqa: E731
            out["migration"] = {"columns": [label(c) for c in table.columns],
                                "rows": [(label(i), [f"{v:,}" for v in row]) for i, row in zip(table.index, table.to_numpy())]}
    return out


def write_index(run_dir: Path, manifest: dict, sections, params) -> None:
    """The run's front page: client, dates, data period, headline KPIs with their change against the
    previous successful run, the tier migration since it, sections with status, time and links."""
    lang = params.lang
    rows = []
    for section in sections:
        rec = manifest["sections"].get(section.name, {})
        html = rec.get("html") if rec.get("status") == "succeeded" else None
        seconds = rec.get("seconds")
        rows.append({
            "title": section_title(section, lang), "status": rec.get("status", "not run"), "html": html,
            "duration": f"{seconds:.1f} s" if seconds else "", "message": rec.get("message", ""),
        })
    started = dt.datetime.fromisoformat(manifest["started_at"])
    page = _env(lang).get_template("run_index.html.j2").render(
        lang="zh-CN" if lang == "zh" else "en",
        title=_brand(params), client=manifest["client"], run_id=manifest["run_id"], status=manifest["status"],
        started=f"{started:%Y-%m-%d %H:%M}", period=_period(manifest.get("data_period"), lang), sections=rows, css=_css(),
        comparison=_comparison(run_dir, params),
        has_rejected=(run_dir / "rejected.csv").exists(), has_scores=(run_dir / "customer_scores.csv").exists(), has_xlsx=(run_dir / "customer_scores.xlsx").exists(),
        has_tags=(run_dir / "customer_tags.csv").exists(), version=importlib.metadata.version("tierbook"),
        commit=(manifest.get("commit") or "")[:10] + (" (uncommitted changes)" if manifest.get("dirty") else ""),
    )
    _write(run_dir / "index.html", page)


HEADLINE = ("customers", "revenue", "mean_clv", "nps", "churn_rate")


def _headline(kpis: dict, params) -> dict:
    """A run's headline KPIs for the client's list of runs, formatted (missing ones empty)."""
    from .i18n import compact_money, money

    top = params.tiers.levels[0].name
    out = {
        "customers": f"{kpis['customers']:,}" if "customers" in kpis else "",
        "revenue": compact_money(kpis["revenue"], params.currency, params.lang) if "revenue" in kpis else "",
        "top_share": (f"{kpis[f'tier.{top}.customer_share']:.0%} / {kpis[f'tier.{top}.revenue_share']:.0%}"
                      if f"tier.{top}.revenue_share" in kpis else ""),
        "mean_clv": money(kpis["mean_clv"], params.currency) if "mean_clv" in kpis else "",
        "nps": f"{kpis['nps']:+.0f}" if "nps" in kpis else "",
        "churn_rate": f"{kpis['churn_rate']:.1%}" if "churn_rate" in kpis else "",
    }
    return out


def write_client_index(client_dir: Path, params) -> None:
    """``reports/<client>/index.html``: every run, newest first, with its date, data period, status
    and headline KPIs, and a link to its front page; the run ``latest`` points to is marked."""
    from .i18n import tier_names

    latest = client_dir / "latest"
    latest_id = Path(os.readlink(latest)).name if latest.is_symlink() else None
    runs = []
    for run in sorted((p for p in client_dir.iterdir() if p.is_dir() and not p.is_symlink() and (p / "manifest.json").exists()),
                      reverse=True):
        try:
            manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
            kpis = json.loads((run / "kpis.json").read_text(encoding="utf-8")) if (run / "kpis.json").exists() else {}
        except (OSError, ValueError):  # a run folder being written, or damaged: listed without figures
            manifest, kpis = {"status": "unreadable"}, {}
        status = manifest.get("status", "unknown")
        runs.append({"id": run.name, "date": _run_date(run.name), "period": _period(manifest.get("data_period"), params.lang),
                     "status": status, "latest": run.name == latest_id,
                     "href": f"{run.name}/index.html" if (run / "index.html").exists() else None, **_headline(kpis, params)})
    top = params.tiers.levels[0].name
    page = _env(params.lang).get_template("client_index.html.j2").render(
        lang="zh-CN" if params.lang == "zh" else "en", title=_brand(params), client=params.client, runs=runs, css=_css(),
        top=tier_names(params).get(top, top), currency=params.currency, version=importlib.metadata.version("tierbook"),
    )
    _write(client_dir / "index.html", page)
