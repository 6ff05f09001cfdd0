"""The report's sections, in order. Adding a section is a notebook in ``notebooks/``, one line
here, and its helpers (with tests) in ``src/tierbook``.

``depends_on`` names the sections whose outputs (in the run folder) a section reads; sections whose
dependencies are done run in parallel, up to ``run.parallel`` at a time, those with the most sections
waiting on them first (``by_priority``).
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Section:
    name: str  # the SECTION= of `make section`, and the stem of its HTML file
    notebook: str  # file in notebooks/
    title: str  # shown on the index and in the navigation bar
    depends_on: tuple[str, ...] = ()


SECTIONS: tuple[Section, ...] = (
    Section("summary", "00_summary.ipynb", "Executive summary", depends_on=("data", "rfm", "profile", "clv", "satisfaction", "churn", "ab_test")),
    Section("data", "01_data.ipynb", "Data: ingestion and cleaning"),
    Section("rfm", "02_rfm.ipynb", "RFM, segments and tiers", depends_on=("data",)),
    # profile adds its tags to customer_scores, so it runs after churn (the last section before it that writes them)
    Section("profile", "07_profile.ipynb", "Customer profiles and tags", depends_on=("churn",)),
    Section("clv", "03_clv.ipynb", "Customer lifetime value", depends_on=("rfm",)),
    Section("satisfaction", "04_satisfaction.ipynb", "Satisfaction (NPS and CSAT)", depends_on=("clv",)),
    Section("churn", "05_churn.ipynb", "Churn", depends_on=("clv",)),
    Section("ab_test", "06_ab_test.ipynb", "A/B test of tier strategies", depends_on=("rfm",)),
)


def waiting_on(name: str, sections: tuple[Section, ...] = SECTIONS) -> set[str]:
    """The sections that depend on ``name``, directly or through others."""
    found: set[str] = set()
    todo = [name]
    while todo:
        current = todo.pop()
        for section in sections:
            if current in section.depends_on and section.name not in found:
                found.add(section.name)
                todo.append(section.name)
    return found


def by_priority(sections: list[Section] | tuple[Section, ...]) -> list[Section]:
    """The order in which sections that are ready take a free slot: those with the most sections waiting on them first
    (the chain to the end of the report is longest behind them), then as listed. When clv is done, churn (profile and
    summary wait on it) starts before satisfaction (summary only): in the listed order, satisfaction took the one free
    slot and churn started 18 s later in the 1M-customer report (2026-12-02)."""
    sections = tuple(sections)
    return sorted(sections, key=lambda s: -len(waiting_on(s.name, sections)))


def section_named(name: str) -> Section:
    for section in SECTIONS:
        if section.name == name:
            return section
    from .errors import TierbookError

    raise TierbookError(f"unknown section {name!r}; sections: {', '.join(s.name for s in SECTIONS)}")
