"""Params: ``params/default.yaml`` merged with ``params/<client>.yaml`` (and ``--set`` overrides),
validated once with pydantic before any notebook runs.

Errors are one line: an unknown key names the key and the closest valid key; a wrong type names
the key, the value and what was expected; an unknown client lists the clients that exist.
"""

from __future__ import annotations

import copy
import datetime as dt
import difflib
import os
import re
import string
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from .contract import TABLES
from .errors import TierbookError

CLIENT_NAME = re.compile(r"^[a-z0-9_-]+$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReturnRule(Strict):
    """A row is a return / cancellation when ``column`` (a contract name) matches the rule."""

    column: str
    startswith: str | None = None
    equals: list[str] | None = None
    negative: bool = False

    @model_validator(mode="after")
    def _one_test(self):
        tests = [self.startswith is not None, self.equals is not None, self.negative]
        if sum(tests) != 1:
            raise ValueError("a return rule needs exactly one of startswith, equals or negative: true")
        return self


class Source(Strict):
    table: ClassVar[str] = ""
    name: str
    path: str
    format: Literal["auto", "csv", "excel", "parquet"] = "auto"
    encoding: str = "auto"
    delimiter: str = "auto"
    sheet: str | int | None = None
    header_row: int = Field(0, ge=0)
    columns: dict[str, str]
    date_format: str | None = None
    dayfirst: bool = False

    @field_validator("name")
    @classmethod
    def _name(cls, v):
        if not CLIENT_NAME.match(v):
            raise ValueError(f"source name {v!r} must match [a-z0-9_-]+")
        return v

    @model_validator(mode="after")
    def _mapping(self):
        contract = TABLES[self.table]
        for src, target in self.columns.items():
            if target not in contract:
                close = difflib.get_close_matches(target, list(contract), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f"; valid names: {', '.join(contract)}"
                raise ValueError(f"column {src!r} is mapped to {target!r}, which is not in the {self.table} contract{hint}")
        targets = list(self.columns.values())
        dup = sorted({t for t in targets if targets.count(t) > 1})
        if dup:
            raise ValueError(f"several columns are mapped to {dup[0]!r}; map exactly one")
        missing = [c.name for c in contract.values() if c.role == "required" and c.name not in targets]
        if missing:
            raise ValueError(f"no column is mapped to the required {missing[0]!r}; add `<your column>: {missing[0]}` under columns")
        return self


class TransactionSource(Source):
    table: ClassVar[str] = "transactions"
    channel: str | None = None
    currency: str | None = None
    returns: list[ReturnRule] = []

    @model_validator(mode="after")
    def _amount(self):
        targets = set(self.columns.values())
        if "amount" not in targets and not {"quantity", "unit_price"} <= targets:
            raise ValueError("map either an `amount` column or both `quantity` and `unit_price`")
        if {"cost", "margin"} <= targets:
            raise ValueError("both a `cost` and a `margin` column are mapped; map one (margin = amount - cost)")
        for rule in self.returns:
            if rule.column not in targets:
                raise ValueError(f"return rule on {rule.column!r}, but no source column is mapped to it")
        return self


class CustomerSource(Source):
    table: ClassVar[str] = "customers"
    attributes: dict[str, str] = {}  # any other column -> attribute name, kept as text for the profile section

    @model_validator(mode="after")
    def _attributes(self):
        for src, name in self.attributes.items():
            if not re.match(r"^[a-z][a-z0-9_]*$", name):
                raise ValueError(f"attribute {src!r} is named {name!r}; attribute names must match [a-z][a-z0-9_]*")
            if name in TABLES["customers"] or name in self.columns.values():
                raise ValueError(f"attribute {src!r} is named {name!r}, a name of the customers contract; map it under columns")
            if src in self.columns:
                raise ValueError(f"column {src!r} is both mapped under columns and listed under attributes; keep one")
        return self


class SurveySource(Source):
    table: ClassVar[str] = "survey"


class ExperimentSource(Source):
    table: ClassVar[str] = "experiment"
    outcomes: dict[str, str] = {}


class Sources(Strict):
    transactions: list[TransactionSource] = Field(min_length=1)
    customers: CustomerSource | None = None
    survey: SurveySource | None = None
    experiment: ExperimentSource | None = None

    @model_validator(mode="after")
    def _unique_names(self):
        names = [s.name for s in self.transactions]
        for opt in (self.customers, self.survey, self.experiment):
            if opt is not None:
                names.append(opt.name)
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"two sources are named {dup[0]!r}; source names must be unique")
        return self

    def all(self) -> list[tuple[str, Source]]:
        """Every source as (kind, source): transactions first, in their order."""
        return [(f"transactions[{i}]", s) for i, s in enumerate(self.transactions)] + [
            (kind, s) for kind, s in (("customers", self.customers), ("survey", self.survey), ("experiment", self.experiment))
            if s is not None]


class Demo(Strict):
    generate: bool = False
    size: int = Field(20000, ge=50)
    seed: int = 20240101
    purchase_rate: float = Field(0.125, gt=0, le=7)  # the customers' mean purchases a week (make bench: 0.25)


class Paths(Strict):
    data: str = "data/{client}"
    data_root: str | None = None  # an absolute folder outside the project that params may read from (explicit opt-in)


class Window(Strict):
    start: dt.date | None = None
    end: dt.date | None = None


class CrossSourceDuplicates(Strict):
    enabled: bool = True
    time_tolerance_minutes: float = Field(1.0, ge=0)


class Outliers(Strict):
    method: Literal["none", "log_mad", "max_amount"] = "log_mad"
    # 7: on Online Retail z > 7 flags only the 80,995- and 74,215-unit lines and the GBP 38,970 manual
    # line (z > 6 adds 15 wholesale lines of GBP 3,794+); on the demo it flags the planted scanner errors.
    threshold: float = Field(7.0, gt=0)


class Clean(Strict):
    exact_duplicates: Literal["merge", "keep"] = "merge"
    zero_amount_sales: Literal["reject", "keep"] = "reject"
    cross_source_duplicates: CrossSourceDuplicates = CrossSourceDuplicates()
    window: Window = Window()
    max_date: dt.date | None = None
    outliers: Outliers = Outliers()


HL_CODES = [r + f + m for r in "HL" for f in "HL" for m in "HL"]


class Segment8(Strict):
    zh: str
    en: str
    action: str = ""


class NamedSegment(Strict):
    name: str
    zh: str
    r: tuple[int, int]
    f: tuple[int, int]
    action: str = ""


def _uncovered_cells(rules: list[dict], n: int) -> list[tuple[int, int]]:
    """(R, F) score pairs that no named-segment rule covers."""
    return [(r, f) for r in range(1, n + 1) for f in range(1, n + 1)
            if not any(rule["r"][0] <= r <= rule["r"][1] and rule["f"][0] <= f <= rule["f"][1] for rule in rules)]


class RFM(Strict):
    as_of: dt.date | None = None
    occasion: Literal["day", "order"] = "day"
    time_unit: Literal["D", "W", "M", "Q"] = "W"
    n_scores: int = Field(5, ge=2, le=10)
    method: Literal["quantile", "thresholds"] = "quantile"
    thresholds: dict[Literal["recency_days", "purchase_occasions", "monetary_total"], list[float]] | None = None
    reference: Literal["mean", "median"] = "mean"
    segments_8: dict[str, Segment8]
    segments_named: list[NamedSegment]

    @model_validator(mode="after")
    def _maps(self):
        if sorted(self.segments_8) != sorted(HL_CODES):
            missing = sorted(set(HL_CODES) - set(self.segments_8)) or sorted(set(self.segments_8) - set(HL_CODES))
            raise ValueError(f"segments_8 needs exactly the 8 codes {', '.join(HL_CODES)} (R, F, M as H/L); check {missing[0]!r}")
        gaps = _uncovered_cells([rule.model_dump() for rule in self.segments_named], self.n_scores)
        if gaps:
            raise ValueError(f"segments_named leaves R={gaps[0][0]}, F={gaps[0][1]} without a segment; every (R, F) score pair 1..{self.n_scores} needs one")
        if self.method == "thresholds":
            for measure in ("recency_days", "purchase_occasions", "monetary_total"):
                cuts = (self.thresholds or {}).get(measure)
                if cuts is None or len(cuts) != self.n_scores - 1 or sorted(cuts) != list(cuts):
                    raise ValueError(f"method: thresholds needs thresholds.{measure}: {self.n_scores - 1} ascending cut points")
        return self


class TierLevel(Strict):
    name: str
    zh: str
    top_share: float | None = Field(None, gt=0, le=1)
    min_rfm_score: int | None = None
    segments: list[str] | None = None
    action: str = ""


class Tiers(Strict):
    basis: Literal["monetary_total", "monetary_mean", "purchase_occasions", "clv"] = "monetary_total"
    window_days: int | None = Field(365, ge=1)
    levels: list[TierLevel] = Field(min_length=1)
    migration_days: int = Field(90, ge=1)

    @model_validator(mode="after")
    def _levels(self):
        for level in self.levels:
            rules = [level.top_share is not None, level.min_rfm_score is not None, bool(level.segments)]
            if sum(rules) > 1:
                raise ValueError(f"tier {level.name!r} has more than one rule; give one of top_share, min_rfm_score, segments")
        last = self.levels[-1]
        if last.top_share is not None or last.min_rfm_score is not None or last.segments:
            raise ValueError(f"the last tier ({last.name!r}) must have no rule, so that every customer gets a tier")
        return self


class Clustering(Strict):
    k_min: int = Field(2, ge=2)
    k_max: int = Field(8, ge=2)
    sample_size: int = Field(5000, ge=100)
    fit_size: int = Field(20000, ge=100)
    seed: int = 0


class CLV(Strict):
    time_unit: Literal["D", "W", "M", "Q"] = "M"
    horizon: int = Field(12, ge=1, le=600)
    margin: float = Field(0.3, gt=0, le=1)
    annual_discount_rate: float = Field(0.10, ge=0, lt=1)
    holdout_days: int | None = Field(180, ge=7)
    min_customers: int = Field(100, ge=10)
    min_repeat_customers: int = Field(30, ge=5)
    max_spend_correlation: float = Field(0.3, gt=0, lt=1)
    top_n: int = Field(20, ge=1, le=500)


class Satisfaction(Strict):
    min_responses: int = Field(30, ge=1)
    min_n: int = Field(30, ge=1)
    confidence: float = Field(0.95, gt=0.5, lt=1)
    p_adjust: Literal["holm", "bonferroni", "bh"] = "holm"
    value_bins: int = Field(10, ge=2, le=20)
    top_terms: int = Field(10, ge=1, le=50)
    stop_words: list[str] = []


class Churn(Strict):
    churn_days: int | None = Field(None, ge=1)
    churn_days_quantile: float = Field(0.9, ge=0.5, lt=1)
    prediction_days: int | None = Field(None, ge=7)
    min_customers: int = Field(200, ge=20)
    at_risk_value_share: float = Field(0.2, gt=0, le=1)
    at_risk_min_risk: float = Field(0.5, gt=0, lt=1)
    top_n: int = Field(30, ge=1, le=500)
    cox_fit_sample: int = Field(200000, ge=1000)  # more customers: the Cox model is fitted on a random sample of this many
    cox_sample: int = Field(20000, ge=1000)  # more customers: the proportional-hazards test runs on a random sample of this many
    train_sample: int = Field(100000, ge=1000)  # more active customers: the churn models are fitted on a sample of this many
    importance_sample: int = Field(20000, ge=1000)  # more test customers: the permutation importance runs on a sample of this many
    seed: int = 0


class ABTest(Strict):
    control: str | None = None
    planned_split: dict[str, float] | None = None
    strata: Literal["auto", "stratum", "tier", "segment", "none"] = "auto"
    primary: str | None = None
    outcome_window_days: int = Field(30, ge=1)
    pre_period_days: int = Field(365, ge=1)
    covariate: Literal["auto", "none"] = "auto"
    correction: Literal["holm", "bonferroni", "bh"] = "holm"
    confidence: float = Field(0.95, gt=0.5, lt=1)
    alpha: float = Field(0.05, gt=0, lt=0.5)
    winsorize: float | None = Field(None, gt=0.5, lt=1)
    bootstrap_resamples: int = Field(2000, ge=0)
    power: float = Field(0.8, gt=0.5, lt=1)
    target_lift: float = Field(0.05, gt=0)
    cost_per_treated: dict[str, float] = {}
    margin: float | None = Field(None, gt=0, le=1)
    min_n: int = Field(30, ge=2)
    seed: int = 0

    @model_validator(mode="after")
    def _split(self):
        if self.planned_split is not None and (not self.planned_split or any(v <= 0 for v in self.planned_split.values())):
            raise ValueError("planned_split needs a positive share for every arm, e.g. {control: 0.5, treatment: 0.5}")
        return self


def _ascending(edges: list[float], key: str) -> list[float]:
    if not edges or any(b <= a for a, b in zip(edges, edges[1:])):
        raise ValueError(f"{key} needs ascending cut points, e.g. [25, 35, 45, 55]")
    return edges


class ProfileBands(Strict):
    age: list[float] = [25, 35, 45, 55]
    company_size: list[float] = [10, 50, 250, 1000]

    @model_validator(mode="after")
    def _edges(self):
        _ascending(self.age, "profile.bands.age")
        _ascending(self.company_size, "profile.bands.company_size")
        return self


class Lifecycle(Strict):
    new_days: int = Field(90, ge=1)
    lapsing_share: float = Field(0.5, gt=0, lt=1)
    reactivated_days: int = Field(90, ge=1)


class TagRules(Strict):
    cadence_days: list[int] = [30, 90, 180]
    discount_share: list[float] = [0.2, 0.5]
    weekend_share: float = Field(0.5, gt=0, le=1)
    high_return_share: float = Field(0.2, gt=0, le=1)

    @model_validator(mode="after")
    def _edges(self):
        _ascending(self.cadence_days, "profile.tags.cadence_days")
        if len(_ascending(self.discount_share, "profile.tags.discount_share")) != 2:
            raise ValueError("profile.tags.discount_share needs two cut points (low | medium | high), e.g. [0.2, 0.5]")
        return self


class Profile(Strict):
    attributes: Literal["auto"] | list[str] = "auto"
    bands: ProfileBands = ProfileBands()
    lifecycle: Lifecycle = Lifecycle()
    tags: TagRules = TagRules()
    min_n: int = Field(30, ge=1)
    min_group_size: int = Field(100, ge=1)
    merge: dict[str, str] = {}
    correction: Literal["holm", "bonferroni", "bh"] = "holm"
    alpha: float = Field(0.05, gt=0, lt=0.5)
    top_tags: int = Field(5, ge=1, le=20)


class Crm(Strict):
    xlsx_max_rows: int = Field(50_000, ge=0)


class Run(Strict):
    parallel: int = Field(2, ge=1)
    executor: Literal["fork", "kernel"] = "fork"
    cell_timeout_seconds: int = Field(1800, ge=10)


class DuckDBSettings(Strict):
    """DuckDB's own settings (null = DuckDB's default: every core, 80% of the memory, spill beside the database)."""

    threads: int | None = Field(None, ge=1)
    memory_limit: str | None = None
    temp_directory: str | None = None

    @field_validator("memory_limit")
    @classmethod
    def _size(cls, v):
        if v is not None and not re.match(r"^\s*\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*$", v):
            raise ValueError(f"{v!r} is not a size; write it as DuckDB does, e.g. 4GB or 512MB")
        return v


class SparkSettings(Strict):
    master: str = "local[2]"
    app_name: str = "tierbook"
    remote: str | None = None
    config: dict[str, str | int | float | bool] = {}

    @field_validator("remote")
    @classmethod
    def _connect_url(cls, v):
        if v is not None and not v.startswith("sc://"):
            raise ValueError(f"{v!r} is not a Spark Connect URL; write sc://host:15002")
        return v

    @field_validator("config")
    @classmethod
    def _spark_keys(cls, v):
        for key in v:
            if not key.startswith("spark."):
                raise ValueError(f"config key {key!r} is not a Spark setting; Spark settings start with 'spark.', e.g. spark.executor.memory")
        return v


class Engine(Strict):
    """Where the transaction-level work runs (tierbook.engine): DuckDB in-process, or PySpark."""

    kind: Literal["duckdb", "pyspark"] = "duckdb"
    duckdb: DuckDBSettings = DuckDBSettings()
    spark: SparkSettings = SparkSettings()


class Privacy(Strict):
    """Personal data (tierbook.privacy): source columns never read, contract PII opted into the CRM export."""

    pii_columns: list[str] = []
    export_pii: list[Literal["name", "phone", "email", "address", "id_number"]] = []

    @model_validator(mode="after")
    def _names(self):
        for key, names in (("pii_columns", self.pii_columns), ("export_pii", self.export_pii)):
            if any(not str(n).strip() for n in names):
                raise ValueError(f"{key} has an empty column name; list source columns by their header, e.g. [微信号]")
            dup = sorted({n for n in names if names.count(n) > 1})
            if dup:
                raise ValueError(f"{key} lists {dup[0]!r} twice; list it once")
        return self


class Params(Strict):
    client: str
    title: str | None = None
    currency: str = "CNY"
    lang: Literal["en", "zh"] = "en"
    demo: Demo = Demo()
    paths: Paths = Paths()
    sources: Sources
    clean: Clean = Clean()
    rfm: RFM
    tiers: Tiers
    clustering: Clustering = Clustering()
    clv: CLV = CLV()
    satisfaction: Satisfaction = Satisfaction()
    churn: Churn = Churn()
    ab_test: ABTest = ABTest()
    profile: Profile = Profile()
    crm: Crm = Crm()
    run: Run = Run()
    privacy: Privacy = Privacy()
    engine: Engine = Engine()

    def data_dir(self, root: Path) -> Path:
        return (root / Path(self.paths.data.format(client=self.client)).expanduser()).resolve()

    def source_path(self, root: Path, source: Source) -> Path:
        path = Path(source.path).expanduser()
        return path if path.is_absolute() else self.data_dir(root) / path


# --------------------------------------------------------------------------- paths


def _lexical(path: Path) -> Path:
    """``path`` made absolute and normalised without following symbolic links (a data folder that is
    a link to a shared drive stays where params say it is)."""
    return Path(os.path.normpath(os.path.abspath(path)))


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def confine_paths(params: Params, root: Path, where: str = "params") -> None:
    """Every path in params stays in the project, or in ``paths.data_root`` when params set one.

    No ``..`` anywhere; ``paths.data`` relative to the project root, or absolute inside the data
    root; a source's ``path`` relative to the data folder, or absolute inside the data folder or the
    data root; ``paths.data`` has no placeholder but ``{client}``. Symbolic links are not followed:
    the check is on what params say, so a data folder linked to a shared drive still works."""
    root = _lexical(root)
    data_root = None
    if params.paths.data_root is not None:
        data_root = Path(params.paths.data_root).expanduser()
        if not data_root.is_absolute() or ".." in data_root.parts:
            raise TierbookError(f"{where}: paths.data_root = {params.paths.data_root!r} must be an absolute folder without '..' "
                                "(e.g. /mnt/clients); it allows reading client data outside the project")
        data_root = _lexical(data_root)
    fields = [f for _, f, _, _ in string.Formatter().parse(params.paths.data) if f is not None]
    if any(f != "client" for f in fields):
        raise TierbookError(f"{where}: paths.data = {params.paths.data!r} may only use the placeholder {{client}}; "
                            f"remove {{{next(f for f in fields if f != 'client')}}}")
    allowed = "the project" + (f" or paths.data_root ({data_root})" if data_root else "")
    fix = "set paths.data_root to the absolute folder that holds the client's data to allow it"

    def check(key: str, text: str, base: Path, inside: list[Path]) -> Path:
        path = Path(text).expanduser()
        if ".." in path.parts:
            raise TierbookError(f"{where}: {key} = {text!r} contains '..', which could leave {allowed}; "
                                f"give the path from {base} down, or {fix}")
        full = _lexical(path if path.is_absolute() else base / path)
        if not any(_inside(full, folder) for folder in inside):
            raise TierbookError(f"{where}: {key} = {text!r} is outside {allowed}; move the files under {base} or {fix}")
        return full

    roots = [root] + ([data_root] if data_root else [])
    data_dir = check("paths.data", params.paths.data.format(client=params.client), root, roots)
    for kind, source in params.sources.all():
        check(f"sources.{kind}.path (source {source.name!r})", source.path, data_dir,
              [data_dir] + ([data_root] if data_root else []))


# --------------------------------------------------------------------------- loading


def list_clients(params_dir: Path) -> list[str]:
    return sorted(p.stem for p in params_dir.glob("*.yaml") if p.stem != "default")


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise TierbookError(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', exc)}); fix the syntax") from None
    if not isinstance(data, dict):
        raise TierbookError(f"{path}: expected a mapping of keys at the top level")
    return data


def deep_merge(base: dict, override: dict) -> dict:
    """Merge ``override`` into a copy of ``base``: mappings merge key by key, anything else replaces."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def parse_overrides(pairs: list[str]) -> dict:
    """``["clean.outliers.threshold=6", "demo.size=500"]`` -> nested dict (values parsed as YAML)."""
    out: dict = {}
    for pair in pairs:
        if "=" not in pair:
            raise TierbookError(f"--set {pair!r}: expected key=value, e.g. --set demo.size=500")
        key, value = pair.split("=", 1)
        node = out
        *parents, leaf = key.strip().split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(value) if value != "" else None
    return out


def _has_path(data: Any, loc: tuple) -> bool:
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            return False
    return True


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The pydantic model that owns the last key of ``loc`` (for 'closest valid key')."""
    model: Any = Params
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or part not in model.model_fields:
            return None
        ann = model.model_fields[part].annotation
        model = _unwrap(ann, part, loc)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _unwrap(ann, part, loc):
    import typing

    args = [a for a in typing.get_args(ann) if a is not type(None)]
    if part == "transactions":
        return TransactionSource
    if args and typing.get_origin(ann) is not dict:
        for a in args:
            if isinstance(a, type) and issubclass(a, BaseModel):
                return a
    return ann


def _dotted(loc: tuple) -> str:
    return ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in loc).replace(".[", "[")


def _format_error(err: dict, files: list[tuple[Path, dict]]) -> str:
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    key = _dotted(loc)
    where = next((str(f) for f, data in reversed(files) if _has_path(data, loc)), str(files[-1][0]))
    if err["type"] == "extra_forbidden":
        model = _model_at(loc)
        valid = list(model.model_fields) if model else []
        close = difflib.get_close_matches(str(loc[-1]), valid, n=1)
        hint = f"did you mean {_dotted(loc[:-1] + (close[0],))!r}?" if close else f"valid keys here: {', '.join(valid)}"
        return f"{where}: unknown key {key!r}; {hint}"
    if err["type"] == "missing":
        return f"{where}: required key {key!r} is missing; add it (see params/default.yaml)"
    value = err.get("input")
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"].endswith(("_type", "_parsing")) or err["type"] in ("literal_error", "greater_than_equal", "greater_than"):
        return f"{where}: {key} = {value!r} is invalid: {msg}"
    return f"{where}: {key}: {msg}"


def load_params(client: str, params_dir: Path, overrides: list[str] | None = None) -> Params:
    """Merge default.yaml, <client>.yaml and ``--set`` overrides; validate; raise TierbookError."""
    if not CLIENT_NAME.match(client or ""):
        raise TierbookError(f"client name {client!r} is not valid: use lower-case letters, digits, '_' and '-' (e.g. acme)")
    client_file = params_dir / f"{client}.yaml"
    if not client_file.exists():
        clients = list_clients(params_dir)
        raise TierbookError(
            f"unknown client {client!r}: no {client_file}; clients: {', '.join(clients) or 'none'} "
            f"(create params/{client}.yaml; params/demo.yaml is a worked example)"
        )
    default_file = params_dir / "default.yaml"
    files = [(default_file, _read_yaml(default_file)), (client_file, _read_yaml(client_file))]
    if overrides:
        files.append((Path("--set"), parse_overrides(overrides)))
    merged: dict = {}
    for _, data in files:
        merged = deep_merge(merged, data)
    merged["client"] = client
    try:
        params = Params.model_validate(merged)
    except ValidationError as exc:
        raise TierbookError(_format_error(exc.errors()[0], files)) from None
    where = next((str(f) for f, data in reversed(files) if "paths" in data or "sources" in data), str(client_file))
    confine_paths(params, params_dir.parent, where)
    return params


def params_to_dict(params: Params) -> dict:
    return params.model_dump(mode="json")
