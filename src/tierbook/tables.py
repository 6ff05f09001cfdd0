"""Readable tables for the report (pandas Styler): thousands separators, currency, percentages,
no index. Display only: these functions never compute results."""

from __future__ import annotations

import html

import pandas as pd

from . import i18n, privacy
from .i18n import SYMBOLS, _, money  # noqa: F401 - SYMBOLS and money: amounts in the report's currency, imported from here by the sections

MAX_ROWS = 25


def p_value(value: float) -> str:
    """A p-value as a reader expects it: ``<0.001`` below one in a thousand, else three decimals."""
    if pd.isna(value):
        return ""
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def p_text(value: float) -> str:
    """A p-value for prose: 'p = 0.012' or 'p < 0.001' (a p-value is never 0, and 3.8e-53 says no more)."""
    return "p < 0.001" if value < 0.001 else f"p = {value:.3f}"


def signed_interval(value: float, lower: float, upper: float, max_digits: int = 2) -> tuple[str, str, str]:
    """A signed figure and its interval as texts ("+12", "+9", "+15"), in whole numbers unless the interval's bounds
    would then read the same: then with as many decimals as tell them apart (at most ``max_digits``). An NPS from 180,000
    answers has an interval of under one point (-9.4 to -8.6), which whole numbers showed as "-9 … -9"."""
    digits = 0
    while digits < max_digits and round(lower, digits) == round(upper, digits):  # -0.4 and +0.4 both round to 0
        digits += 1
    return f"{value:+.{digits}f}", f"{lower:+.{digits}f}", f"{upper:+.{digits}f}"


def styled(frame: pd.DataFrame, *, currency: str | None = None, money_cols=(), int_cols=(), pct_cols=(), p_cols=(),
           labels: dict[str, str] | None = None, max_rows: int = MAX_ROWS, csv: str | None = None):
    """A Styler with formatted numbers and readable headers. A table longer than ``max_rows`` is
    cut, with a caption saying so and naming ``csv`` (the full table in the run folder). Customer
    ids must be pseudonyms (``check_no_customer_ids``)."""
    check_no_customer_ids(frame)
    shown = frame.head(max_rows)
    formats = {column: p_value for column in p_cols}
    for column in money_cols:
        formats[column] = (lambda v, c=currency: money(v, c) if pd.notna(v) else "") if currency else "{:,.2f}"
    for column in int_cols:
        formats[column] = "{:,.0f}"
    for column in pct_cols:
        formats[column] = "{:.1%}"
    for column in shown.columns:  # any other float: two decimals with separators
        if column not in formats and pd.api.types.is_float_dtype(shown[column]):
            formats[column] = "{:,.2f}"
        elif column not in formats and i18n.lang() != "en" and not pd.api.types.is_numeric_dtype(shown[column]):
            # tier and segment names, known labels; other text as it is. Translated before the Styler
            # escapes it: a formatter would get "Can&#x27;t Lose Them" and miss the name
            shown = shown.assign(**{column: shown[column].map(i18n.name)})
    # escape="html": client strings (store names, comments ...) are shown as text, never as markup
    styler = shown.style.format(formats, na_rep="", escape="html").hide(axis="index")
    if "customer_id" in shown.columns:  # a pseudonym on one line (it wrapped after "C-")
        styler = styler.set_properties(subset=["customer_id"], **{"white-space": "nowrap"})
    if len(frame) > max_rows:
        caption = _("First {shown} of {total:,} rows", shown=max_rows, total=len(frame))
        link = f'<a href="{html.escape(csv, quote=True)}">{html.escape(csv)}</a>' if csv else ""  # relative to the run folder
        styler = styler.set_caption(html.escape(caption) + (_("; all rows in {csv}", csv=link) if csv else ""))
    headers = [(labels or {}).get(c, c) for c in shown.columns]
    # headers may be data (a pivot's regions, tier names from params): translated when known, never
    # logged, and escaped like the values (the Styler escapes values only)
    shown_headers = [i18n.name(h) for h in headers] if labels or i18n.lang() != "en" else headers
    return styler.relabel_index([html.escape(str(h)) for h in shown_headers], axis="columns")


def check_no_customer_ids(frame: pd.DataFrame) -> None:
    """A page shows customer ids only as pseudonyms (``tierbook.privacy``): a ``customer_id`` column
    holding anything else stops the section instead of reaching the HTML."""
    if "customer_id" in frame.columns and not privacy.is_pseudonym(frame["customer_id"]).all():
        raise ValueError("a table with real customer ids was about to be shown; pass them through "
                         "tierbook.privacy.pseudonymise(ids, privacy.client_key(root, client)) first")
