"""The executive summary (section ``summary``, the first page of a run): KPI cards with their change
against the client's previous successful run, findings generated from the numbers and ranked by
size, the action per tier from params, tier moves since the previous run, and links into every
section. Works with whichever sections produced tables; writes ``kpis.json`` for the next run.

Text is in ``params.lang`` (``en`` or ``zh``); tier names follow it (``tiers.levels[].zh``).
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .data import read_clean
from .errors import UpstreamFailed
from .i18n import _, compact_money, tier_names
from .params import Params
from .tables import money, signed_interval

TEXT = {
    "en": {
        "title": "Executive summary", "customers": "Customers", "active": "Active customers", "revenue": "Net revenue",
        "period": "{start} to {end}", "nps": "NPS", "csat": "CSAT", "churn": "Churned", "clv": "Mean CLV",
        "vs": "vs previous run ({date})", "no_previous": "First run for this client: no comparison yet.",
        "tier_line": "{tier}: {cust:.0%} of customers, {rev:.0%} of revenue",
        "findings": "Findings", "actions": "Recommended actions per tier", "sections": "Sections",
        "moves": "Tier moves since the previous run ({date}): {up:,} customers moved up, {down:,} down, {same:,} stayed; {new:,} are new.",
        "f_concentration": "{tier} customers are {cust:.0%} of customers and bring {rev:.0%} of net revenue ({ratio:.1f}× their share).",
        "f_clv": "Mean CLV of {top} customers is {top_clv} against {bottom_clv} for {bottom} ({ratio:.0f}×).",
        "f_churn": "{rate:.0%} of customers have churned: {top_rate:.0%} in {top} against {bottom_rate:.0%} in {bottom}.",
        "f_nps": "NPS is {nps} ({low} to {high}); by tier it runs from {best_nps:+.0f} ({best}) to {worst_nps:+.0f} ({worst}).",
        "f_ab_ship": "A/B test: ship {treatment} to {stratum} — {reason}.",
        "f_ab_none": "A/B test: no tier shows an effect worth shipping for {treatment} ({overall}).",
        "f_ab_srm": "A/B test: the sample ratio check failed, so its results are not to be trusted.",
        "f_change": "{label} changed from {before} to {now} since the previous run.",
        "f_profile": "{tier} customers are {ratio:.1f}× as likely as the average customer to carry the tag {group}: {tag} ({share:.0%} against {share_all:.0%}).",
        "f_lapsing": "{share:.0%} of customers ({n:,}) are lapsing: not yet churned, and the cheapest to win back.",
        "tier": "tier", "share_customers": "customers", "share_revenue": "revenue", "action": "action",
    },
    "zh": {
        "title": "执行摘要", "customers": "客户数", "active": "活跃客户", "revenue": "净销售额",
        "period": "{start} 至 {end}", "nps": "净推荐值 NPS", "csat": "满意度 CSAT", "churn": "流失率", "clv": "平均客户终身价值",
        "vs": "对比上次运行（{date}）", "no_previous": "该客户的首次运行：暂无对比。",
        "tier_line": "{tier}：客户占 {cust:.0%}，销售额占 {rev:.0%}",
        "findings": "主要发现", "actions": "各层级建议行动", "sections": "报告章节",
        "moves": "自上次运行（{date}）以来的层级流动：{up:,} 位客户升级，{down:,} 位降级，{same:,} 位不变；新增 {new:,} 位。",
        "f_concentration": "{tier}占客户的 {cust:.0%}，贡献 {rev:.0%} 的净销售额（是其客户占比的 {ratio:.1f} 倍）。",
        "f_clv": "{top}的平均客户终身价值为 {top_clv}，{bottom}为 {bottom_clv}（{ratio:.0f} 倍）。",
        "f_churn": "{rate:.0%} 的客户已流失：{top}为 {top_rate:.0%}，{bottom}为 {bottom_rate:.0%}。",
        "f_nps": "净推荐值为 {nps}（{low} 至 {high}）；各层级从 {best}的 {best_nps:+.0f} 到 {worst}的 {worst_nps:+.0f}。",
        "f_ab_ship": "A/B 测试：建议对{stratum}推行 {treatment} —— {reason}。",
        "f_ab_none": "A/B 测试：{treatment} 在各层级均无值得推行的效果（{overall}）。",
        "f_ab_srm": "A/B 测试：样本比例检验未通过，结果不可信。",
        "f_change": "{label}自上次运行以来从 {before} 变为 {now}。",
        "f_profile": "{tier}中带有「{group}：{tag}」标签的客户占 {share:.0%}，是全体客户（{share_all:.0%}）的 {ratio:.1f} 倍。",
        "f_lapsing": "{share:.0%} 的客户（{n:,} 位）处于沉默期：尚未流失，是挽回成本最低的群体。",
        "tier": "层级", "share_customers": "客户占比", "share_revenue": "销售额占比", "action": "建议行动",
    },
}


def _read(run_dir: Path, name: str) -> pd.DataFrame | None:
    path = run_dir / "tables" / f"{name}.csv"
    return pd.read_csv(path, encoding="utf-8-sig") if path.exists() else None


def action_text(action: str, lang: str) -> str:
    """Params actions read "专属优惠和增值服务: exclusive offers"; show the part in the report's language."""
    if ": " not in action:
        return action
    zh, en = action.split(": ", 1)
    return zh if lang == "zh" else en


def collect_kpis(run_dir: Path) -> dict:
    """The headline figures of a run, flat (name -> number or text), from the tables the sections wrote."""
    k: dict = {}
    orders_path = run_dir / "data" / "orders.parquet"
    if orders_path.exists():
        orders = pd.read_parquet(orders_path, columns=["order_date", "net_amount"])
        k["revenue"] = float(orders["net_amount"].sum())
        k["period_start"], k["period_end"] = f"{orders['order_date'].min():%Y-%m-%d}", f"{orders['order_date'].max():%Y-%m-%d}"
    tiers = _read(run_dir, "tiers")
    if tiers is not None:
        k["customers"] = int(tiers["customers"].sum())
        for row in tiers.itertuples():
            k[f"tier.{row.tier}.customer_share"] = float(row.customer_share)
            if np.isfinite(row.revenue_share):  # empty when the tier window holds no revenue: left out, not NaN in kpis.json
                k[f"tier.{row.tier}.revenue_share"] = float(row.revenue_share)
    clv = _read(run_dir, "clv_by_tier")
    if clv is not None:
        k["mean_clv"] = float(clv["clv"].sum() / clv["customers"].sum())
        for row in clv.itertuples():
            k[f"tier.{row.tier}.mean_clv"] = float(row.mean_clv)
    sat = _read(run_dir, "satisfaction_overall")
    if sat is not None and pd.notna(sat["nps"].iloc[0]):
        s = sat.iloc[0]
        k.update({"nps": float(s["nps"]), "nps_lower": float(s["nps_lower"]), "nps_upper": float(s["nps_upper"]), "n_nps": int(s["n_nps"])})
        if pd.notna(s["csat"]):
            k.update({"csat": float(s["csat"]), "n_csat": int(s["n_csat"])})
        by_tier = _read(run_dir, "satisfaction_by_tier")
        if by_tier is not None:
            for row in by_tier.itertuples():
                k[f"tier.{row.tier}.nps"] = float(row.nps)
    churn = _read(run_dir, "churn_by_tier")
    if churn is not None:
        k["churn_rate"] = float(churn["churned"].sum() / churn["customers"].sum())
        k["active_customers"] = int(churn["customers"].sum() - churn["churned"].sum())
        for row in churn.itertuples():
            k[f"tier.{row.tier}.churn_rate"] = float(row.churn_rate)
    lifecycle = _read(run_dir, "profile_lifecycle")
    if lifecycle is not None:
        for row in lifecycle.itertuples():
            k[f"lifecycle.{row.stage}.customers"] = int(row.customers)
            k[f"lifecycle.{row.stage}.customer_share"] = float(row.customer_share)
    return k


def previous_run(run_dir: Path) -> tuple[Path, dict] | None:
    """The newest earlier run of the same client that succeeded and has kpis.json."""
    for other in sorted((p for p in run_dir.parent.iterdir() if p.is_dir() and not p.is_symlink() and p.name < run_dir.name), reverse=True):
        manifest, kpis = other / "manifest.json", other / "kpis.json"
        if manifest.exists() and kpis.exists():
            if json.loads(manifest.read_text(encoding="utf-8")).get("status") == "succeeded":
                return other, json.loads(kpis.read_text(encoding="utf-8"))
    return None


def tier_migration(run_dir: Path, previous: Path, order: list[str]) -> pd.DataFrame | None:
    """Customers by their tier in the previous run (rows, top tier first; ``new`` for customers that
    run did not have) and their tier now (columns): the run index's migration table."""
    now_path, before_path = run_dir / "data" / "customer_scores.parquet", previous / "data" / "customer_scores.parquet"
    if not (now_path.exists() and before_path.exists()):
        return None
    now = read_clean(now_path, columns=["customer_id", "tier"]).assign(customer_id=lambda f: f["customer_id"].astype(str))
    before = read_clean(before_path, columns=["customer_id", "tier"]).assign(customer_id=lambda f: f["customer_id"].astype(str))
    m = now.merge(before, on="customer_id", how="left", suffixes=("", "_before"))
    m["tier_before"] = m["tier_before"].fillna("new")
    table = pd.crosstab(m["tier_before"], m["tier"])
    rows = [t for t in order if t in table.index] + ([t for t in table.index if t not in order])
    cols = [t for t in order if t in table.columns] + [t for t in table.columns if t not in order]
    return table.reindex(index=rows, columns=cols, fill_value=0).rename_axis(index="before", columns="now")


def tier_moves(run_dir: Path, previous: Path, order: list[str]) -> dict | None:
    """Customers whose tier went up / down / stayed since the previous run, and new customers."""
    table = tier_migration(run_dir, previous, order)
    if table is None:
        return None
    rank = {name: i for i, name in enumerate(order)}  # 0 = top tier
    moves = {"up": 0, "down": 0, "same": 0, "new": int(table.loc["new"].sum()) if "new" in table.index else 0}
    for before, row in table.iterrows():
        if before == "new":
            continue
        for now, n in row.items():
            key = "same" if rank.get(now) == rank.get(before) else ("up" if rank.get(now, 99) < rank.get(before, 99) else "down")
            moves[key] += int(n)
    return moves


@dataclass
class Card:
    label: str
    value: str
    detail: str = ""
    delta: str = ""  # "+1.2 pp" against the previous run
    good: bool | None = None  # is the change good news (None: neutral)


@dataclass
class SummaryStage:
    lang: str
    kpis: dict
    previous: dict | None = None
    previous_date: str | None = None
    cards: list[Card] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    actions: pd.DataFrame | None = None
    moves: dict | None = None
    tiers: pd.DataFrame | None = None


def _delta(now: float | None, before: float | None, kind: str) -> str:
    if now is None or before is None or (isinstance(before, float) and np.isnan(before)):
        return ""
    d = now - before
    if kind == "pct":
        return f"{d * 100:+.1f} pp"
    if kind == "points":
        return f"{d:+.1f}"
    return f"{d / before:+.1%}" if before else ""


def build_cards(k: dict, before: dict | None, params: Params) -> list[Card]:
    t, cur = TEXT[params.lang], params.currency
    b = before or {}
    cards = []
    if "customers" in k:
        cards.append(Card(t["customers"], f"{k['customers']:,}", delta=_delta(k["customers"], b.get("customers"), "rel")))
    if "active_customers" in k:
        cards.append(Card(t["active"], f"{k['active_customers']:,}", delta=_delta(k["active_customers"], b.get("active_customers"), "rel"),
                          good=(k["active_customers"] >= b["active_customers"]) if "active_customers" in b else None))
    if "revenue" in k:
        cards.append(Card(t["revenue"], compact_money(k["revenue"], cur, params.lang), t["period"].format(start=k["period_start"], end=k["period_end"]),
                          _delta(k["revenue"], b.get("revenue"), "rel"), (k["revenue"] >= b["revenue"]) if "revenue" in b else None))
    if "mean_clv" in k:
        cards.append(Card(t["clv"], money(k["mean_clv"], cur), delta=_delta(k["mean_clv"], b.get("mean_clv"), "rel"),
                          good=(k["mean_clv"] >= b["mean_clv"]) if "mean_clv" in b else None))
    if "nps" in k:
        nps, low, high = signed_interval(k["nps"], k["nps_lower"], k["nps_upper"])
        cards.append(Card(t["nps"], nps, f"{low} … {high}, n = {k['n_nps']:,}",
                          _delta(k["nps"], b.get("nps"), "points"), (k["nps"] >= b["nps"]) if "nps" in b else None))
    if "csat" in k:
        cards.append(Card(t["csat"], f"{k['csat']:.0%}", f"n = {k['n_csat']:,}", _delta(k["csat"], b.get("csat"), "pct"),
                          (k["csat"] >= b["csat"]) if "csat" in b else None))
    if "churn_rate" in k:
        cards.append(Card(t["churn"], f"{k['churn_rate']:.1%}", delta=_delta(k["churn_rate"], b.get("churn_rate"), "pct"),
                          good=(k["churn_rate"] <= b["churn_rate"]) if "churn_rate" in b else None))
    return cards


def build_findings(k: dict, run_dir: Path, params: Params, before: dict | None) -> list[str]:
    """Sentences from the numbers, ranked by size (how far the figure is from 'nothing to see')."""
    t, names, cur = TEXT[params.lang], tier_names(params), params.currency
    order = [level.name for level in params.tiers.levels]
    ranked: list[tuple[float, str]] = []
    top, bottom = order[0], order[-1]
    if f"tier.{top}.revenue_share" in k and k[f"tier.{top}.customer_share"] > 0:
        cust, rev = k[f"tier.{top}.customer_share"], k[f"tier.{top}.revenue_share"]
        ranked.append((rev / cust, t["f_concentration"].format(tier=names[top], cust=cust, rev=rev, ratio=rev / cust)))
    if f"tier.{top}.mean_clv" in k and k.get(f"tier.{bottom}.mean_clv", 0) > 0:
        ratio = k[f"tier.{top}.mean_clv"] / k[f"tier.{bottom}.mean_clv"]
        ranked.append((np.log2(ratio), t["f_clv"].format(top=names[top], bottom=names[bottom], top_clv=money(k[f"tier.{top}.mean_clv"], cur),
                                                         bottom_clv=money(k[f"tier.{bottom}.mean_clv"], cur), ratio=ratio)))
    if "churn_rate" in k and f"tier.{top}.churn_rate" in k and f"tier.{bottom}.churn_rate" in k and top != bottom:
        spread = abs(k[f"tier.{bottom}.churn_rate"] - k[f"tier.{top}.churn_rate"])
        ranked.append((10 * spread, t["f_churn"].format(rate=k["churn_rate"], top=names[top], bottom=names[bottom],
                                                        top_rate=k[f"tier.{top}.churn_rate"], bottom_rate=k[f"tier.{bottom}.churn_rate"])))
    tier_nps = {name: k[f"tier.{name}.nps"] for name in order if f"tier.{name}.nps" in k}
    if "nps" in k and len(tier_nps) >= 2:
        best, worst = max(tier_nps, key=tier_nps.get), min(tier_nps, key=tier_nps.get)
        nps, low, high = signed_interval(k["nps"], k["nps_lower"], k["nps_upper"])
        ranked.append(((tier_nps[best] - tier_nps[worst]) / 10, t["f_nps"].format(
            nps=nps, low=low, high=high, best=names.get(best, best), worst=names.get(worst, worst),
            best_nps=tier_nps[best], worst_nps=tier_nps[worst])))
    verdicts, srm = _read(run_dir, "ab_verdicts"), _read(run_dir, "ab_srm")
    if verdicts is not None:
        if srm is not None and srm["srm"].astype(str).str.lower().eq("true").any():
            ranked.append((100.0, t["f_ab_srm"]))
        else:
            ship = verdicts[(verdicts["verdict"] == "ship") & (verdicts["stratum"] != "all")]
            for row in ship.itertuples():
                ranked.append((5.0, t["f_ab_ship"].format(treatment=row.treatment, stratum=names.get(row.stratum, row.stratum), reason=row.reason)))
            if ship.empty:
                for row in verdicts[verdicts["stratum"] == "all"].itertuples():
                    ranked.append((1.0, t["f_ab_none"].format(treatment=row.treatment, overall=row.reason)))
    tgi = _read(run_dir, "profile_tgi_tier")
    if tgi is not None:
        # the strongest tag that does not follow from how tiers are made (the client's own tiers, recency, cadence)
        rows = tgi[(tgi["group"] == top) & ~tgi["small"].astype(bool) & (tgi["p_adjusted"] < params.profile.alpha) & (tgi["tgi"] > 100)
                   & ~tgi["tag_group"].isin(["member_tier", "lifecycle_stage", "purchase_cadence"])]
        if len(rows):
            r = rows.sort_values("tgi", ascending=False).iloc[0]
            from .profile import GROUP_LABELS, GROUP_LABELS_ZH
            from .tags import label

            labels = GROUP_LABELS_ZH if params.lang == "zh" else GROUP_LABELS
            ranked.append((np.log2(r["tgi"] / 100) * 2, t["f_profile"].format(
                tier=names[top], ratio=r["tgi"] / 100, group=labels.get(r["tag_group"], r["tag_group"]), tag=label(r["tag"], r["tag_group"]),
                share=r["share_group"], share_all=r["share_all"])))
    if "lifecycle.lapsing.customers" in k:
        ranked.append((10 * k["lifecycle.lapsing.customer_share"], t["f_lapsing"].format(
            share=k["lifecycle.lapsing.customer_share"], n=k["lifecycle.lapsing.customers"])))
    if before:
        for key, label, fmt in (("nps", t["nps"], "{:+.0f}"), ("churn_rate", t["churn"], "{:.1%}"), ("csat", t["csat"], "{:.0%}")):
            if key in k and key in before and fmt.format(k[key]) != fmt.format(before[key]):
                change = abs(k[key] - before[key]) / (10 if key == "nps" else 0.05)
                ranked.append((change, t["f_change"].format(label=label, before=fmt.format(before[key]), now=fmt.format(k[key]))))
    return [text for _, text in sorted(ranked, key=lambda pair: -pair[0])]


def run_summary_stage(params: Params, run_dir: Path) -> SummaryStage:
    from .pipeline import section_named, wait_for
    from .profile import export_scores

    export_scores(params, run_dir)  # customer_scores and the CRM files, every section's columns in them
    for name in section_named("summary").reads_later:  # sections whose tables are read below: run beside the export
        if not wait_for(run_dir, name, finished=True):
            raise UpstreamFailed(_("The {section} section did not succeed, so this run has no summary; see its page or error file, "
                                   "mend it and run the report again.", section=name))
    k = collect_kpis(run_dir)
    prev = previous_run(run_dir)
    before, before_date, moves = None, None, None
    order = [level.name for level in params.tiers.levels]
    if prev is not None:
        before = prev[1]
        before_date = f"{prev[0].name[:4]}-{prev[0].name[4:6]}-{prev[0].name[6:8]} {prev[0].name[9:11]}:{prev[0].name[11:13]}"
        moves = tier_moves(run_dir, prev[0], order)
    names = tier_names(params)
    tiers = _read(run_dir, "tiers")
    actions = None
    if tiers is not None:
        t = TEXT[params.lang]
        actions = pd.DataFrame({t["tier"]: tiers["tier"].map(lambda n: names.get(n, n)), t["share_customers"]: tiers["customer_share"],
                                t["share_revenue"]: tiers["revenue_share"],
                                t["action"]: [action_text(a, params.lang) if isinstance(a, str) else "" for a in tiers["action"]]})
    stage = SummaryStage(lang=params.lang, kpis=k, previous=before, previous_date=before_date, cards=build_cards(k, before, params),
                         findings=build_findings(k, run_dir, params, before), actions=actions, moves=moves, tiers=tiers)
    (run_dir / "kpis.json").write_text(json.dumps(k, indent=2, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
    return stage


def cards_html(stage: SummaryStage) -> str:
    """KPI cards as HTML (client strings escaped); styles in report.css (.tb-cards)."""
    t = TEXT[stage.lang]
    parts = ['<div class="tb-cards">']
    for card in stage.cards:
        cls = "" if card.good is None else (" tb-up" if card.good else " tb-down")
        delta = f'<div class="tb-delta{cls}">{html.escape(card.delta)} {html.escape(t["vs"].format(date=stage.previous_date))}</div>' if card.delta else ""
        detail = f'<div class="tb-detail">{html.escape(card.detail)}</div>' if card.detail else ""
        parts.append(f'<div class="tb-card"><div class="tb-label">{html.escape(card.label)}</div>'
                     f'<div class="tb-value">{html.escape(card.value)}</div>{detail}{delta}</div>')
    parts.append("</div>")
    return "".join(parts)


def findings_html(stage: SummaryStage) -> str:
    items = "".join(f"<li>{html.escape(text)}</li>" for text in stage.findings)
    return f"<ol class=\"tb-findings\">{items}</ol>" if items else ""
