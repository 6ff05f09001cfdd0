"""Readable tables for the report (pandas Styler): thousands separators, currency, percentages,
no index. Display only: these functions never compute results."""

from __future__ import annotations

import pandas as pd

SYMBOLS = {"CNY": "¥", "RMB": "¥", "USD": "$", "GBP": "£", "EUR": "€", "JPY": "¥"}
MAX_ROWS = 25


def money(value: float, currency: str) -> str:
    symbol = SYMBOLS.get(currency.upper(), currency + " ")
    sign = "-" if value < 0 else ""
    return f"{sign}{symbol}{abs(value):,.2f}"


def styled(frame: pd.DataFrame, *, currency: str | None = None, money_cols=(), int_cols=(), pct_cols=(),
           labels: dict[str, str] | None = None, max_rows: int = MAX_ROWS):
    """A Styler with formatted numbers and readable headers; long tables are cut to ``max_rows``
    (the full table is in the run's tables/ folder as CSV)."""
    shown = frame.head(max_rows)
    formats = {}
    for column in money_cols:
        formats[column] = (lambda v, c=currency: money(v, c) if pd.notna(v) else "") if currency else "{:,.2f}"
    for column in int_cols:
        formats[column] = "{:,.0f}"
    for column in pct_cols:
        formats[column] = "{:.1%}"
    styler = shown.style.format(formats, na_rep="").hide(axis="index")
    if labels:
        styler = styler.relabel_index([labels.get(c, c) for c in shown.columns], axis="columns")
    return styler
