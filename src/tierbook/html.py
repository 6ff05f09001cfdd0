"""Stakeholder HTML: sections exported from executed notebooks with code hidden and no network
requests (images embedded, no require.js / MathJax / mermaid / widget scripts), and the run's
front page. See ``templates/``."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
from pathlib import Path

import jinja2

TEMPLATES = Path(__file__).parent / "templates"


def _css() -> str:
    return (TEMPLATES / "report.css").read_text(encoding="utf-8")


def _brand(params) -> str:
    return params.title or f"Tierbook report: {params.client}"


def export_section(notebook: Path, html: Path, section, sections, params, run_id: str) -> None:
    """Write the section's HTML next to the run's index, with a navigation bar between sections."""
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor
    from traitlets.config import Config

    config = Config()
    config.TagRemovePreprocessor.remove_cell_tags = {"remove_cell", "parameters", "injected-parameters"}
    config.TagRemovePreprocessor.remove_all_outputs_tags = {"remove_output"}
    exporter = HTMLExporter(config=config, template_name="tierbook", extra_template_basedirs=[str(TEMPLATES)])
    exporter.exclude_input = True
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    exporter.embed_images = True
    exporter.register_preprocessor(TagRemovePreprocessor(config=config), enabled=True)
    nav = [{"href": f"{s.name}.html", "title": s.title, "current": s.name == section.name} for s in sections]
    resources = {"tierbook": {
        "css": _css(), "brand": _brand(params), "nav": nav,
        "meta": f"{params.client} · run {run_id} · {section.title}",
    }}
    body, _ = exporter.from_filename(str(notebook), resources=resources)
    tmp = html.with_suffix(".html.tmp")
    tmp.write_text(body, encoding="utf-8")
    tmp.replace(html)


def write_index(run_dir: Path, manifest: dict, sections, params) -> None:
    """The run's front page: client, dates, data period, sections with status, time and links."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True)
    rows = []
    for section in sections:
        rec = manifest["sections"].get(section.name, {})
        html = rec.get("html") if rec.get("status") == "succeeded" else None
        seconds = rec.get("seconds")
        rows.append({
            "title": section.title, "status": rec.get("status", "not run"), "html": html,
            "duration": f"{seconds:.1f} s" if seconds else "", "message": rec.get("message", ""),
        })
    started = dt.datetime.fromisoformat(manifest["started_at"])
    page = env.get_template("run_index.html.j2").render(
        title=_brand(params), client=manifest["client"], run_id=manifest["run_id"], status=manifest["status"],
        started=f"{started:%Y-%m-%d %H:%M}", period=manifest.get("data_period"), sections=rows, css=_css(),
        has_rejected=(run_dir / "rejected.csv").exists(), has_scores=(run_dir / "customer_scores.csv").exists(),
        has_tags=(run_dir / "customer_tags.csv").exists(), version=importlib.metadata.version("tierbook"),
        commit=(manifest.get("commit") or "")[:10] + (" (uncommitted changes)" if manifest.get("dirty") else ""),
    )
    tmp = run_dir / "index.html.tmp"
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(run_dir / "index.html")
