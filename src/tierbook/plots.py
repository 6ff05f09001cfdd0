"""Figures for the report: one theme, functions that take results and return a matplotlib Figure.
They never fit or aggregate (that is the stages' job)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np
import pandas as pd
import seaborn as sns

from .tables import SYMBOLS

PALETTE = ["#1f4e79", "#e07b39", "#3a923a", "#c03d3e", "#7f5fa8", "#8c6d31"]


def set_theme() -> None:
    sns.set_theme(style="whitegrid", palette=PALETTE, rc={"figure.dpi": 110, "axes.titleweight": "bold"})


def _money_axis(ax, currency: str) -> None:
    symbol = SYMBOLS.get(currency.upper(), currency + " ")
    ax.yaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{symbol}{v:,.0f}"))


def monthly_revenue(monthly: pd.DataFrame, currency: str):
    """Net revenue and orders per month by channel (``data.monthly`` output)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    sns.lineplot(data=monthly, x="month", y="revenue", hue="channel", marker="o", ax=axes[0])
    axes[0].set(title="Net revenue per month", xlabel="Month", ylabel=f"Net revenue ({currency})")
    _money_axis(axes[0], currency)
    sns.lineplot(data=monthly, x="month", y="orders", hue="channel", marker="o", ax=axes[1])
    axes[1].set(title="Orders per month", xlabel="Month", ylabel="Orders")
    axes[1].yaxis.set_major_formatter(mticker.StrMethodFormatter("{x:,.0f}"))
    for ax in axes:
        ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    return fig


def order_values(orders: pd.DataFrame, currency: str):
    """Distribution of net order values on a log scale."""
    fig, ax = plt.subplots(figsize=(7, 3.5))
    values = orders["net_amount"][orders["net_amount"] > 0]
    bins = np.logspace(np.log10(values.min()), np.log10(values.max()), 40) if len(values) else 10
    ax.hist(values, bins=bins, color=PALETTE[0])
    ax.set_xscale("log")
    ax.set(title="Net order value", xlabel=f"Order value ({currency}, log scale)", ylabel="Orders")
    ax.yaxis.set_major_formatter(mticker.StrMethodFormatter("{x:,.0f}"))
    fig.tight_layout()
    return fig
