"""Figures of the profile section (客户画像): they take the stage's tables and never aggregate."""

from __future__ import annotations

import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np
import pandas as pd
import seaborn as sns

from . import i18n
from . import tags as T
from .i18n import _, localised
from .plots import PALETTE, tier_colors

STAGE_COLORS = {"new": "#3a923a", "active": "#1f4e79", "reactivated": "#7f5fa8", "lapsing": "#e07b39", "lapsed": "#c03d3e"}


@localised
def lifecycle_bars(stages: pd.DataFrame):
    """Share of customers and of revenue to date per lifecycle stage (``profile.stage_table``)."""
    fig, ax = plt.subplots(figsize=(8, 3.2))
    y = np.arange(len(stages))[::-1]
    ax.barh(y + 0.2, stages["customer_share"], height=0.4, color=[STAGE_COLORS.get(s, PALETTE[0]) for s in stages["stage"]], label="customers")
    ax.barh(y - 0.2, stages["revenue_share"], height=0.4, color="#b8c4d0", label="revenue to date")
    for yi, cs, rs, n in zip(y, stages["customer_share"], stages["revenue_share"], stages["customers"]):
        ax.text(cs + 0.01, yi + 0.2, f"{cs:.0%} (n={n:,})", va="center", fontsize=8)
        ax.text(rs + 0.01, yi - 0.2, f"{rs:.0%}", va="center", fontsize=8, color="#555")
    ax.set_yticks(y, [T.label(s, "lifecycle_stage") for s in stages["stage"]])
    ax.xaxis.set_major_formatter(mticker.PercentFormatter(1.0))
    ax.set(title="Lifecycle stages: customers (coloured) and revenue to date (grey)", xlabel="Share",
           xlim=(0, min(1.0, max(stages["customer_share"].max(), stages["revenue_share"].max()) * 1.3 + 0.05)))
    fig.tight_layout()
    return fig


@localised
def flow_heatmap(flow: pd.DataFrame, base_label: str):
    """Customers moving between lifecycle stages: row shares, counts annotated."""
    flow = flow.rename(index=str, columns=str).rename(index=T.label, columns=T.label)  # stage names in the report's language
    share = flow.div(flow.sum(axis=1), axis=0)
    labels = share.map(lambda v: f"{v:.0%}") + "\n" + flow.map(lambda v: f"n={v:,}")
    fig, ax = plt.subplots(figsize=(7.5, 0.55 * len(flow) + 1.6))
    sns.heatmap(share.astype(float), annot=labels, fmt="", cmap="Greens", vmin=0, vmax=1, ax=ax, cbar_kws={"label": "Share of the row"})
    ax.set(title="Lifecycle flow", xlabel="Stage now", ylabel=_("Stage on {date}", date=base_label))
    fig.tight_layout()
    return fig


@localised
def tgi_bars(rows: pd.DataFrame, title: str, label_group: dict | None = None):
    """TGI of a group's distinctive tags (``tags.distinctive`` rows): bars from 100, n and shares annotated."""
    rows = rows.iloc[::-1]
    fig, ax = plt.subplots(figsize=(8, 0.42 * len(rows) + 1.3))
    y = np.arange(len(rows))
    colors = [PALETTE[0] if t >= 100 else PALETTE[3] for t in rows["tgi"]]
    ax.barh(y, rows["tgi"] - 100, left=100, color=colors)
    ax.axvline(100, color="grey", linewidth=1)
    names = [T.labelled(i18n.name((label_group or {}).get(g, g)), T.label(t, g)) for g, t in zip(rows["tag_group"], rows["tag"])]
    ax.set_yticks(y, names)
    for yi, tgi, sg, sa, n in zip(y, rows["tgi"], rows["share_group"], rows["share_all"], rows["n_tag_group"]):
        ax.text(max(tgi, 100) + 3, yi, _("TGI {tgi:.0f}  ({share_group:.0%} vs {share_all:.0%}, n={n:,})", tgi=tgi, share_group=sg, share_all=sa, n=n),
                va="center", fontsize=8)
    if rows["tgi"].max() > 400:  # one huge index would flatten the others: log scale (equal ratios, equal lengths)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.set_xlim(90, rows["tgi"].max() * 4)
    else:
        ax.set_xlim(min(rows["tgi"].min() - 10, 90), rows["tgi"].max() * 1.45 + 20)
    ax.set(title=title, xlabel="TGI (100 = as common as among all customers)")
    fig.tight_layout()
    return fig


@localised
def mix_bars(mix: pd.DataFrame, title: str, order: list[str]):
    """Stacked bars: the tier (or segment) mix of each row value (region, channel ...), in shares."""
    share = mix.div(mix.sum(axis=1), axis=0).iloc[::-1]
    colors = tier_colors(order) if len(order) <= len(PALETTE) else dict(zip(order, sns.color_palette("tab10", len(order))))
    fig, ax = plt.subplots(figsize=(8, 0.42 * len(share) + 1.5))
    left = np.zeros(len(share))
    for column in share.columns:
        ax.barh(np.arange(len(share)), share[column], left=left, color=colors.get(column), label=column)
        left += share[column].to_numpy()
    ax.set_yticks(np.arange(len(share)), [f"{T.label(i)} (n={int(n):,})" for i, n in zip(share.index, mix.sum(axis=1).iloc[::-1])])
    ax.xaxis.set_major_formatter(mticker.PercentFormatter(1.0))
    ax.set(title=title, xlabel="Share of the row's customers", xlim=(0, 1))
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=min(len(share.columns), 5), fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


@localised
def category_heatmap(mix: pd.DataFrame):
    """Share of each tier's revenue per category (``profile.category_mix``)."""
    mix = mix.rename(index=i18n.name)  # tier names in the report's language
    fig, ax = plt.subplots(figsize=(0.9 * len(mix.columns) + 3, 0.55 * len(mix) + 1.6))
    sns.heatmap(mix.astype(float), annot=mix.map(lambda v: f"{v:.0%}"), fmt="", cmap="Blues", vmin=0, ax=ax,
                cbar_kws={"label": "Share of the tier's revenue"})
    ax.set(title="Category mix by tier (sale lines)", xlabel="Category", ylabel="")
    fig.tight_layout()
    return fig
