"""Figures for the report: one theme, functions that take results and return a matplotlib Figure.
They never fit or aggregate (that is the stages' job)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np
import pandas as pd
import seaborn as sns

from . import i18n
from .i18n import _, localised
from .tables import SYMBOLS

PALETTE = ["#1f4e79", "#e07b39", "#3a923a", "#c03d3e", "#7f5fa8", "#8c6d31"]


CJK_FONTS = ["Noto Sans CJK SC", "Noto Sans CJK JP", "Source Han Sans SC", "WenQuanYi Zen Hei", "Microsoft YaHei", "PingFang SC", "SimHei"]


def _add_cjk_fonts(font_manager) -> None:
    """matplotlib caches its font list on first import (~/.cache/matplotlib); a CJK font installed
    after that (apt-get install fonts-noto-cjk) is invisible to it until the cache is rebuilt.
    Register the system's CJK font files directly instead."""
    for path in font_manager.findSystemFonts():
        name = path.rsplit("/", 1)[-1].lower()
        if any(key in name for key in ("notosanscjk", "sourcehansans", "wqy-zenhei", "msyh", "pingfang", "simhei")):
            try:
                font_manager.fontManager.addfont(path)
            except (OSError, RuntimeError, ValueError):  # an unreadable font file: skip it
                continue


def cjk_font() -> str | None:
    """The first installed CJK font matplotlib can use, or None."""
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    if not installed & set(CJK_FONTS):
        _add_cjk_fonts(font_manager)
        installed = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in CJK_FONTS if name in installed), None)


NO_CJK = ("No CJK font on the machine that made this report, so the figures keep their English labels "
          "(Chinese would be drawn as empty boxes). Install one: `apt-get install fonts-noto-cjk` (make env does it where it can).")


def set_theme() -> None:
    """Seaborn's whitegrid with the report palette; Chinese labels fall back glyph by glyph to the
    first installed CJK font (Debian: fonts-noto-cjk). Without one, a report in Chinese keeps its
    figures in English and says so on the page, rather than drawing boxes."""
    cjk = cjk_font()
    fonts = ["DejaVu Sans"] + ([cjk] if cjk else [])
    sns.set_theme(style="whitegrid", palette=PALETTE, rc={"figure.dpi": 110, "axes.titleweight": "bold", "font.sans-serif": fonts, "font.family": fonts})
    if cjk is None and i18n.lang() != "en":
        i18n.keep_figures_in_english()
        try:
            from IPython.display import HTML, display

            display(HTML(f'<div class="tb-alert">{i18n._(NO_CJK)}</div>'))
        except ImportError:  # outside IPython
            import warnings

            warnings.warn(NO_CJK, stacklevel=2)


def _money_axis(ax, currency: str) -> None:
    symbol = SYMBOLS.get(currency.upper(), currency + " ")
    ax.yaxis.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{symbol}{v:,.0f}"))


@localised
def monthly_revenue(monthly: pd.DataFrame, currency: str):
    """Net revenue and orders per month by channel (``data.monthly`` output)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    sns.lineplot(data=monthly, x="month", y="revenue", hue="channel", marker="o", ax=axes[0])
    axes[0].set(title="Net revenue per month", xlabel="Month", ylabel=_("Net revenue ({currency})", currency=currency))
    _money_axis(axes[0], currency)
    sns.lineplot(data=monthly, x="month", y="orders", hue="channel", marker="o", ax=axes[1])
    axes[1].set(title="Orders per month", xlabel="Month", ylabel="Orders")
    axes[1].yaxis.set_major_formatter(mticker.StrMethodFormatter("{x:,.0f}"))
    for ax in axes:
        ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    return fig


@localised
def order_values(orders: pd.DataFrame, currency: str):
    """Distribution of net order values on a log scale."""
    fig, ax = plt.subplots(figsize=(7, 3.5))
    values = orders["net_amount"][orders["net_amount"] > 0]
    bins = np.logspace(np.log10(values.min()), np.log10(values.max()), 40) if len(values) else 10
    ax.hist(values, bins=bins, color=PALETTE[0])
    ax.set_xscale("log")
    ax.set(title="Net order value", xlabel=_("Order value ({currency}, log scale)", currency=currency), ylabel="Orders")
    ax.yaxis.set_major_formatter(mticker.StrMethodFormatter("{x:,.0f}"))
    fig.tight_layout()
    return fig


def tier_colors(order: list[str]) -> dict[str, str]:
    """The same colour for a tier in every figure of every section (top tier first)."""
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(order)}


@localised
def tier_shares(tiers: pd.DataFrame, order: list[str], value: str = "revenue"):
    """Share of customers and of revenue (or ``value``: the column ``<value>_share``) per tier
    (``tiers.tier_summary`` output)."""
    colors = tier_colors(order)
    label = "CLV" if value == "clv" else value
    long = tiers.melt(id_vars="tier", value_vars=["customer_share", f"{value}_share"], var_name="share", value_name="value")
    long["share"] = long["share"].map({"customer_share": "customers", f"{value}_share": label})
    fig, ax = plt.subplots(figsize=(7, 3.5))
    sns.barplot(data=long, x="share", y="value", hue="tier", hue_order=order, palette=colors, ax=ax)
    ax.set(title=i18n._("Tiers: share of customers and of {what}", what=i18n._(label)), xlabel="", ylabel="Share")
    ax.yaxis.set_major_formatter(mticker.PercentFormatter(1.0))
    for container in ax.containers:
        ax.bar_label(container, labels=[f"{v.get_height():.0%}" for v in container], fontsize=8)
    ax.set_ylim(0, max(1e-9, long["value"].max()) * 1.12)  # room for the labels above the tallest bar
    sns.move_legend(ax, "upper left", bbox_to_anchor=(1.01, 1), frameon=False)  # beside the bars, never over one
    fig.tight_layout()
    return fig


@localised
def segment_shares(profile: pd.DataFrame, label: str, title: str):
    """Horizontal bars of customer share and revenue share per segment."""
    frame = profile.sort_values("revenue_share")
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(frame) + 1.2))
    y = np.arange(len(frame))
    ax.barh(y - 0.2, frame["customer_share"], height=0.4, label="customers", color=PALETTE[0])
    ax.barh(y + 0.2, frame["revenue_share"], height=0.4, label="revenue", color=PALETTE[1])
    ax.set_yticks(y, frame[label])
    ax.xaxis.set_major_formatter(mticker.PercentFormatter(1.0))
    ax.set(title=title, xlabel="Share", ylabel="")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


@localised
def pareto_curve(curve: pd.DataFrame, marks=(0.05, 0.2)):
    """Cumulative revenue share against cumulative customer share (``rfm.pareto``)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(curve["customer_share"], curve["revenue_share"], color=PALETTE[0])
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    for share in marks:
        reached = curve.loc[curve["customer_share"] <= share, "revenue_share"]
        if len(reached):
            value = reached.iloc[-1]
            ax.scatter([share], [value], color=PALETTE[1], zorder=3)
            ax.annotate(i18n._("top {share:.0%} → {value:.0%} of revenue", share=share, value=value), (share, value), textcoords="offset points", xytext=(8, -12))
    ax.set(title="Pareto curve: customers ranked by net spend", xlabel="Share of customers", ylabel="Share of revenue")
    ax.xaxis.set_major_formatter(mticker.PercentFormatter(1.0))
    ax.yaxis.set_major_formatter(mticker.PercentFormatter(1.0))
    fig.tight_layout()
    return fig


@localised
def rf_heatmap(scores: pd.DataFrame, summary: pd.DataFrame, currency: str):
    """Mean net spend per customer for each R x F score cell (customers in the cell annotated)."""
    frame = scores[["r_score", "f_score"]].assign(monetary=summary["monetary_total"].to_numpy())
    mean = frame.pivot_table(index="r_score", columns="f_score", values="monetary", aggfunc="mean").sort_index(ascending=False)
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    sns.heatmap(mean, annot=True, fmt=",.0f", cmap="Blues", ax=ax, cbar_kws={"label": i18n._("Mean net spend ({currency})", currency=currency)})
    ax.set(title="Mean net spend by R and F score", xlabel="F score (frequency)", ylabel="R score (recency, 5 = most recent)")
    fig.tight_layout()
    return fig


@localised
def migration_heatmap(row_share: pd.DataFrame, counts: pd.DataFrame):
    """Row % of customers moving from the base tier (rows) to the current tier (columns)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    labels = row_share.map(lambda v: f"{v:.0%}" if pd.notna(v) else "") + "\n" + counts.loc[row_share.index].map(lambda v: f"n={v:,}")
    sns.heatmap(row_share.astype(float), annot=labels, fmt="", cmap="Greens", vmin=0, vmax=1, ax=ax, cbar_kws={"label": "Share of the base tier"})
    ax.set(title="Tier migration", xlabel="Tier now", ylabel="Tier at the base date")
    fig.tight_layout()
    return fig


@localised
def holdout_by_frequency(by_frequency: pd.DataFrame, holdout_days: int):
    """Mean holdout purchases per customer by calibration repeat purchases: actual, model, naive."""
    fig, ax = plt.subplots(figsize=(7, 3.8))
    x = by_frequency["frequency"]
    ax.plot(x, by_frequency["actual"], marker="o", color=PALETTE[0], label="actual")
    ax.plot(x, by_frequency["predicted"], marker="s", linestyle="--", color=PALETTE[1], label="BG/NBD")
    ax.plot(x, by_frequency["naive"], marker="^", linestyle=":", color="grey", label="naive (calibration rate)")
    ax.set(title=i18n._("Holdout ({days} days): purchases per customer", days=holdout_days), xlabel="Repeat purchases in the calibration period",
           ylabel="Mean purchases in the holdout")
    ax.legend()
    fig.tight_layout()
    return fig


@localised
def tracking(track: pd.DataFrame, calibration_end: pd.Timestamp):
    """Cumulative repeat purchases of the calibration cohort, actual against the model."""
    fig, ax = plt.subplots(figsize=(9, 3.8))
    ax.plot(track["week_end"], track["actual"], color=PALETTE[0], label="actual")
    ax.plot(track["week_end"], track["expected"], color=PALETTE[1], linestyle="--", label="BG/NBD")
    ax.axvline(calibration_end, color="grey", linestyle=":", linewidth=1)
    ax.annotate(" " + i18n._("holdout →"), (calibration_end, 0.05), xycoords=("data", "axes fraction"), color="grey")
    ax.set(title="Cumulative repeat purchases of the calibration customers", xlabel="Week", ylabel="Repeat purchases")
    ax.yaxis.set_major_formatter(mticker.StrMethodFormatter("{x:,.0f}"))
    ax.legend(loc="upper left")
    fig.tight_layout()
    return fig


@localised
def count_histogram(histogram: pd.DataFrame):
    """Customers by repeat purchases in the calibration period, observed against the model."""
    fig, ax = plt.subplots(figsize=(7, 3.5))
    x = np.arange(len(histogram))
    ax.bar(x - 0.2, histogram["observed"], width=0.4, color=PALETTE[0], label="observed")
    ax.bar(x + 0.2, histogram["expected"], width=0.4, color=PALETTE[1], label="BG/NBD")
    ax.set_xticks(x, histogram["repeat_purchases"])
    ax.set(title="Repeat purchases in the calibration period", xlabel="Repeat purchases", ylabel="Customers")
    ax.yaxis.set_major_formatter(mticker.StrMethodFormatter("{x:,.0f}"))
    ax.legend()
    fig.tight_layout()
    return fig


@localised
def p_alive_bands(bands: pd.DataFrame):
    """Share of each tier's customers per P(alive) band (rows: tiers, top first)."""
    fig, ax = plt.subplots(figsize=(8, 0.55 * len(bands) + 1.4))
    colors = ["#c03d3e", "#e9a66b", "#9cc5e0", "#1f4e79"]
    left = np.zeros(len(bands))
    y = np.arange(len(bands))[::-1]
    for color, column in zip(colors, bands.columns):
        values = bands[column].to_numpy(dtype=float)
        ax.barh(y, values, left=left, color=color, label=f"P(alive) {column}")
        for yi, lo, v in zip(y, left, values):
            if v >= 0.06:
                ax.text(lo + v / 2, yi, f"{v:.0%}", ha="center", va="center", fontsize=8, color="white" if color in colors[::3] else "black")
        left += values
    ax.set_yticks(y, [i18n.name(t) for t in bands.index])  # named here: set_yticks' labels escape translate_figure
    ax.xaxis.set_major_formatter(mticker.PercentFormatter(1.0))
    ax.set(title="P(alive) by tier", xlabel="Share of the tier's customers", xlim=(0, 1))
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=4, frameon=False)
    fig.tight_layout()
    return fig


@localised
def clv_distribution(customers: pd.DataFrame, currency: str, order: list[str]):
    """CLV per customer by tier (log scale)."""
    fig, ax = plt.subplots(figsize=(8, 3.8))
    positive = customers[customers["clv"] > 0]
    if len(positive):
        bins = np.logspace(np.log10(max(positive["clv"].min(), 0.01)), np.log10(positive["clv"].max()), 50)
        sns.histplot(data=positive, x="clv", hue="tier", hue_order=order, palette=tier_colors(order), bins=bins, multiple="stack", ax=ax)
    ax.set_xscale("log")
    ax.set(title="CLV per customer", xlabel=i18n._("CLV ({currency}, log scale)", currency=currency), ylabel="Customers")
    fig.tight_layout()
    return fig


@localised
def churn_rates(rates: pd.DataFrame, label: str, title: str, colors: dict | None = None):
    """Churn rate per group with the number of customers on each bar."""
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(rates) + 1.3))
    y = np.arange(len(rates))[::-1]
    bar_colors = [colors.get(g, PALETTE[0]) for g in rates[label]] if colors else PALETTE[0]
    ax.barh(y, rates["churn_rate"], color=bar_colors)
    for yi, rate, n in zip(y, rates["churn_rate"], rates["customers"]):
        ax.text(rate + 0.01, yi, f"{rate:.0%}  (n={n:,})", va="center", fontsize=8)
    ax.set_yticks(y, [i18n.name(g) for g in rates[label]])
    ax.xaxis.set_major_formatter(mticker.PercentFormatter(1.0))
    ax.set(title=title, xlabel="Churned", xlim=(0, min(1.0, rates["churn_rate"].max() * 1.35 + 0.05)))
    fig.tight_layout()
    return fig


@localised
def survival_curves(curves: pd.DataFrame, title: str, colors: dict | None = None):
    """Kaplan–Meier curves (index: days since the first purchase; one column per group)."""
    fig, ax = plt.subplots(figsize=(8, 4))
    for i, column in enumerate(curves.columns):
        ax.step(curves.index, curves[column], where="post", label=column,
                color=(colors or {}).get(column, PALETTE[i % len(PALETTE)]))
    ax.yaxis.set_major_formatter(mticker.PercentFormatter(1.0))
    ax.set(title=title, xlabel="Days since the first purchase", ylabel="Still active", ylim=(0, 1.02))
    ax.legend()
    fig.tight_layout()
    return fig


@localised
def cohort_heatmap(cohorts: pd.DataFrame):
    """Share of each monthly acquisition cohort buying in each later month."""
    table = cohorts.drop(columns="customers")
    table = table.drop(columns=[c for c in table.columns if c == 0])
    fig, ax = plt.subplots(figsize=(min(14, 0.45 * table.shape[1] + 3), 0.32 * len(table) + 1.6))
    sns.heatmap(table.astype(float), annot=table.shape[1] <= 24, fmt=".0%", annot_kws={"fontsize": 6}, cmap="Blues", ax=ax,
                cbar_kws={"label": "Share of the cohort buying"})
    ax.set_yticks(np.arange(len(table)) + 0.5, [f"{c} (n={n:,})" for c, n in zip(cohorts.index, cohorts["customers"])], rotation=0, fontsize=7)
    ax.set(title="Monthly cohorts: share buying again, by months since the first purchase", xlabel="Months since the first month",
           ylabel="First purchase month")
    fig.tight_layout()
    return fig


@localised
def hazard_ratios(table: pd.DataFrame):
    """Cox hazard ratios with 95% intervals on a log axis (1 = no difference from the reference)."""
    frame = table.iloc[::-1]
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(frame) + 1.3))
    y = np.arange(len(frame))
    ax.errorbar(frame["hazard_ratio"], y, xerr=[frame["hazard_ratio"] - frame["lower_95"], frame["upper_95"] - frame["hazard_ratio"]],
                fmt="o", color=PALETTE[0], ecolor="grey", capsize=3)
    ax.axvline(1, color="grey", linestyle=":")
    ax.set_xscale("log")
    ax.set_yticks(y, frame["covariate"])
    ax.set(title="Cox model: hazard of churn against the reference", xlabel="Hazard ratio (log scale; < 1 = stays longer)")
    fig.tight_layout()
    return fig


@localised
def model_checks(lift: pd.DataFrame, calibration: pd.DataFrame):
    """Lift by decile of predicted risk and the calibration of each model."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    sns.lineplot(data=lift, x="decile", y="lift", hue="model", marker="o", ax=axes[0])
    axes[0].axhline(1, color="grey", linestyle=":")
    axes[0].set(title="Lift by decile of predicted risk", xlabel="Decile (1 = highest risk)", ylabel="Churn rate / base rate")
    axes[0].set_xticks(range(1, 11))
    sns.lineplot(data=calibration, x="predicted", y="observed", hue="model", marker="o", ax=axes[1])
    axes[1].plot([0, 1], [0, 1], color="grey", linestyle=":")
    axes[1].set(title="Calibration (10 bins)", xlabel="Predicted churn probability", ylabel="Observed churn rate")
    fig.tight_layout()
    return fig


@localised
def importance(table: pd.DataFrame):
    """Permutation importance: drop in ROC AUC when a feature is shuffled."""
    frame = table.iloc[::-1]
    fig, ax = plt.subplots(figsize=(7, 0.32 * len(frame) + 1.2))
    ax.barh(frame["feature"].str.replace("_", " "), frame["importance"], xerr=frame["std"], color=PALETTE[0])
    ax.set(title="What the model uses", xlabel="Drop in ROC AUC when the feature is shuffled")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- A/B tests


@localised
def ab_effects(effects: pd.DataFrame, outcome: str, currency: str, title: str):
    """Forest plot of treatment − control on one outcome, overall and per stratum: the plain estimate
    (grey) and the CUPED estimate (blue) with their intervals; rates in percentage points."""
    frame = effects[(effects["outcome"] == outcome) & effects["ci_low"].notna()].iloc[::-1]
    binary = bool((frame["kind"] == "binary").any())
    scale = 100 if binary else 1
    several = frame["treatment"].nunique() > 1
    labels = [f"{i18n.name(s)} · {t}" if several else i18n.name(str(s)) for s, t in zip(frame["stratum"], frame["treatment"])]
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(frame) + 1.5))
    y = np.arange(len(frame), dtype=float)
    has_cuped = "cuped_difference" in frame and frame["cuped_difference"].notna().any()
    offset = 0.15 if has_cuped else 0.0
    # numpy arrays, not Series: matplotlib calls float() on a one-row Series (one tested row), which pandas deprecates
    d = frame["difference"].to_numpy(float) * scale
    ax.errorbar(d, y + offset, xerr=np.vstack([d - frame["ci_low"].to_numpy(float) * scale, frame["ci_high"].to_numpy(float) * scale - d]),
                fmt="o", color="#888888", ecolor="#aaaaaa", capsize=3, label="difference of means")
    if has_cuped:
        c = frame["cuped_difference"].to_numpy(float) * scale
        ax.errorbar(c, y - offset, xerr=np.vstack([c - frame["cuped_ci_low"].to_numpy(float) * scale,
                                                   frame["cuped_ci_high"].to_numpy(float) * scale - c]),
                    fmt="s", color=PALETTE[0], ecolor=PALETTE[0], capsize=3, label="CUPED (pre-period adjusted)")
    ax.axvline(0, color="grey", linestyle=":")
    ax.set_yticks(y, labels)
    xlabel = (_("Treatment − control (percentage points), 95% interval") if binary else
              _("Treatment − control ({currency} per customer), 95% interval", currency=currency))
    ax.set(title=title, xlabel=xlabel)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return fig


@localised
def ab_arm_means(effects: pd.DataFrame, outcome: str, currency: str, title: str):
    """Mean outcome per arm and stratum (the numbers behind the differences), with n under each group."""
    frame = effects[effects["outcome"] == outcome]
    binary = bool((frame["kind"] == "binary").any())
    scale = 100 if binary else 1
    control = frame[["stratum", "mean_control", "n_control"]].drop_duplicates("stratum").rename(
        columns={"mean_control": "mean", "n_control": "n"}).assign(arm="control")
    treated = frame[["stratum", "treatment", "mean_treatment", "n_treatment"]].rename(
        columns={"treatment": "arm", "mean_treatment": "mean", "n_treatment": "n"})
    long = pd.concat([control, treated], ignore_index=True).assign(mean=lambda f: f["mean"] * scale)
    fig, ax = plt.subplots(figsize=(8, 3.8))
    sns.barplot(data=long, x="stratum", y="mean", hue="arm", ax=ax)
    sizes = long.groupby("stratum", sort=False)["n"].sum()
    ax.set_xticks(range(len(sizes)), [f"{i18n.name(s)}\nn={n:,}" for s, n in sizes.items()])
    ax.set(title=title, xlabel="", ylabel=_("{outcome} ({unit})", outcome=outcome, unit="%" if binary else currency))
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- satisfaction

SMALL_GROUP = "#c9c9c9"  # groups with fewer answers than satisfaction.min_n
NPS_COLORS = {"detractor": "#c03d3e", "passive": "#e9c46a", "promoter": "#3a923a"}


def _group_colors(table: pd.DataFrame, label: str, small: str, colors: dict | None) -> list[str]:
    return [SMALL_GROUP if is_small else (colors or {}).get(group, PALETTE[0]) for group, is_small in zip(table[label], table[small])]


@localised
def nps_by_group(table: pd.DataFrame, label: str, title: str, colors: dict | None = None, display_labels=None):
    """NPS per group (a ``satisfaction.score_table``) with its interval and n; groups below
    satisfaction.min_n in grey."""
    frame = table[table["n_nps"] > 0]
    fig, ax = plt.subplots(figsize=(8, 0.42 * len(frame) + 1.4))
    y = np.arange(len(frame))[::-1]
    ax.barh(y, frame["nps"], color=_group_colors(frame, label, "nps_below_min_n", colors), height=0.6)
    ax.errorbar(frame["nps"], y, xerr=[frame["nps"] - frame["nps_lower"], frame["nps_upper"] - frame["nps"]], fmt="none", ecolor="#444", capsize=3,
                linewidth=1)
    for yi, upper, n, small in zip(y, frame["nps_upper"], frame["n_nps"], frame["nps_below_min_n"]):
        ax.text(max(upper, 0) + 2, yi, i18n._("n={n:,} (few)", n=n) if small else f"n={n:,}", va="center", fontsize=8, color="#777" if small else "#222")
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set_yticks(y, [i18n.name(t) for t in (display_labels if display_labels is not None else frame[label])])
    ax.set(title=title, xlabel="NPS (−100 to 100), with its interval", xlim=(max(-100, frame["nps_lower"].min() - 8),
                                                                             min(100, frame["nps_upper"].max() + 22)))
    fig.tight_layout()
    return fig


@localised
def nps_mix(table: pd.DataFrame, label: str, title: str, display_labels=None):
    """Share of detractors, passives and promoters per group (100% bars, n on the right; groups
    below satisfaction.min_n faded)."""
    frame = table[table["n_nps"] > 0]
    fig, ax = plt.subplots(figsize=(8, 0.42 * len(frame) + 1.6))
    y = np.arange(len(frame))[::-1]
    left = np.zeros(len(frame))
    alpha = np.where(frame["nps_below_min_n"], 0.35, 1.0)
    for category, column in (("detractor", "detractor_share"), ("passive", "passive_share"), ("promoter", "promoter_share")):
        values = frame[column].to_numpy(dtype=float)
        for yi, lo, v, a in zip(y, left, values, alpha):
            ax.barh(yi, v, left=lo, color=NPS_COLORS[category], alpha=a, height=0.6)
            if v >= 0.08:
                ax.text(lo + v / 2, yi, f"{v:.0%}", ha="center", va="center", fontsize=8)
        left += values
    for yi, n, small in zip(y, frame["n_nps"], frame["nps_below_min_n"]):
        ax.text(1.01, yi, i18n._("n={n:,} (few)", n=n) if small else f"n={n:,}", va="center", fontsize=8, color="#777" if small else "#222")
    ax.set_yticks(y, [i18n.name(t) for t in (display_labels if display_labels is not None else frame[label])])
    ax.xaxis.set_major_formatter(mticker.PercentFormatter(1.0))
    ax.set(title=title, xlabel="Share of NPS answers", xlim=(0, 1.14))
    handles = [plt.Rectangle((0, 0), 1, 1, color=NPS_COLORS[c]) for c in ("detractor", "passive", "promoter")]
    ax.legend(handles, ["detractors (0-6)", "passives (7-8)", "promoters (9-10)"], loc="upper center", bbox_to_anchor=(0.45, -0.5 / (0.42 * len(frame) + 1.6) - 0.12),
              ncol=3, frameon=False)
    fig.tight_layout()
    return fig


@localised
def satisfaction_trend(monthly: pd.DataFrame):
    """Monthly NPS and CSAT with their intervals (months below satisfaction.min_n as hollow
    markers) and the responses behind each month."""
    fig, axes = plt.subplots(3, 1, figsize=(10, 7), sharex=True, gridspec_kw={"height_ratios": [3, 3, 1.6]})
    x = monthly["month"]
    for ax, value, lower, upper, small, name, color in (
            (axes[0], monthly["nps"], monthly["nps_lower"], monthly["nps_upper"], monthly["nps_below_min_n"], "NPS", PALETTE[0]),
            (axes[1], monthly["csat"], monthly["csat_lower"], monthly["csat_upper"], monthly["csat_below_min_n"], "CSAT (4-5 of 5)", PALETTE[1])):
        ax.fill_between(x, lower, upper, color=color, alpha=0.15, linewidth=0)
        ax.plot(x, value, color=color)
        ax.scatter(x[~small], value[~small], color=color, zorder=3, s=18)
        ax.scatter(x[small], value[small], facecolors="white", edgecolors=color, zorder=3, s=18, label="few answers")
        ax.set(ylabel=name)
    axes[0].axhline(0, color="grey", linewidth=0.8)
    axes[1].yaxis.set_major_formatter(mticker.PercentFormatter(1.0))
    if monthly["nps_below_min_n"].any() or monthly["csat_below_min_n"].any():
        axes[0].legend(loc="lower left", fontsize=8)
    axes[0].set_title("NPS and CSAT per month (shaded: interval)")
    axes[2].bar(x, monthly["responses"], width=20, color="grey")
    axes[2].set(ylabel="Responses", xlabel="Month of the response")
    axes[2].yaxis.set_major_formatter(mticker.StrMethodFormatter("{x:,.0f}"))
    fig.tight_layout()
    return fig


@localised
def response_rates(rates: pd.DataFrame, label: str, colors: dict | None = None):
    """Share of each group's customers who answered the survey, with its interval."""
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(rates) + 1.3))
    y = np.arange(len(rates))[::-1]
    ax.barh(y, rates["response_rate"], color=[(colors or {}).get(g, PALETTE[0]) for g in rates[label]], height=0.6)
    ax.errorbar(rates["response_rate"], y, xerr=[rates["response_rate"] - rates["rate_lower"], rates["rate_upper"] - rates["response_rate"]],
                fmt="none", ecolor="#444", capsize=3, linewidth=1)
    for yi, upper, rate, k, n in zip(y, rates["rate_upper"], rates["response_rate"], rates["respondents"], rates["customers"]):
        ax.text(upper + 0.01, yi, i18n._("{rate:.0%} ({k:,} of {n:,})", rate=rate, k=k, n=n), va="center", fontsize=8)
    ax.set_yticks(y, [i18n.name(t) for t in rates[label]])
    ax.xaxis.set_major_formatter(mticker.PercentFormatter(1.0))
    ax.set(title="Who answers the survey", xlabel="Customers who answered at least once", xlim=(0, min(1.0, rates["rate_upper"].max() * 1.4 + 0.05)))
    fig.tight_layout()
    return fig


@localised
def nps_by_value(deciles: pd.DataFrame, measure: str):
    """NPS by value decile of the respondents (1 = lowest value), with intervals and n."""
    fig, ax = plt.subplots(figsize=(8, 3.8))
    x = deciles["value_decile"]
    colors = [SMALL_GROUP if s else PALETTE[0] for s in deciles["nps_below_min_n"]]
    ax.bar(x, deciles["nps"], color=colors)
    ax.errorbar(x, deciles["nps"], yerr=[deciles["nps"] - deciles["nps_lower"], deciles["nps_upper"] - deciles["nps"]], fmt="none", ecolor="#444",
                capsize=3, linewidth=1)
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_xticks(x, [f"{d}\nn={n}" for d, n in zip(x, deciles["n_nps"])], fontsize=8)
    ax.set(title=f"NPS by {measure} decile of the respondents", xlabel=f"{measure} decile (1 = lowest)", ylabel="NPS")
    fig.tight_layout()
    return fig


@localised
def driver_effects(summary: pd.DataFrame):
    """OLS coefficients of the item scores on the 0-10 score, with their intervals."""
    frame = summary[summary["item"] != "intercept"].sort_values("estimate")
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(frame) + 1.4))
    y = np.arange(len(frame))
    ax.errorbar(frame["estimate"], y, xerr=[frame["estimate"] - frame["lower"], frame["upper"] - frame["estimate"]], fmt="o", color=PALETTE[0],
                ecolor="grey", capsize=3)
    ax.axvline(0, color="grey", linestyle=":")
    ax.set_yticks(y, frame["item"])
    ax.set(title="What moves the 0-10 score", xlabel="Points on the 0-10 score per item point (others held fixed)")
    fig.tight_layout()
    return fig
