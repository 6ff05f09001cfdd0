"""The report's language (``lang: en | zh``), gettext-style.

Every heading, label and generated sentence is written in English where it is made (notebook
markdown, ``narrative`` functions, figure titles, table headers) and translated at the last moment
from a catalog: ``locales/<lang>/*.yaml``, lists of ``{en: ..., zh: ...}`` pairs, one file per
section, like gettext's ``.po`` files. A string without a translation is shown in English and, in
a run, written to ``i18n_missing.txt`` in the run folder (a test requires that file to stay absent
for the demo in Chinese). Placeholders (``{n:,}``) are kept by the translation and filled after it.

Names that come from params rather than from the code are translated from params: tier names
(``tiers.levels[].zh``), the 8 RFM segments (``segments_8``) and the named segments
(``named_segments[].zh``).

The language is one setting per process (a notebook kernel), set by ``report.open_run``; the
runner's HTML export passes its language explicitly.
"""

from __future__ import annotations

import functools
import re
import string
from pathlib import Path

import yaml

LOCALES = Path(__file__).parent / "locales"
LANGS = ("en", "zh")

_state: dict = {"lang": "en", "names": {}, "missing": None, "seen": set(), "figures": True}


@functools.lru_cache(maxsize=None)
def catalog(lang: str) -> dict[str, str]:
    """English text (stripped) -> its translation, from every ``locales/<lang>/*.yaml``."""
    if lang == "en":
        return {}
    out: dict[str, str] = {}
    for path in sorted((LOCALES / lang).glob("*.yaml")):
        for pair in yaml.safe_load(path.read_text(encoding="utf-8")) or []:
            out[str(pair["en"]).strip()] = str(pair[lang]).strip()
    return out


def entries(lang: str) -> list[tuple[Path, str, str]]:
    """Every (file, English, translation) pair of a language, duplicates included (for tests)."""
    rows = []
    for path in sorted((LOCALES / lang).glob("*.yaml")):
        for pair in yaml.safe_load(path.read_text(encoding="utf-8")) or []:
            rows.append((path, str(pair["en"]).strip(), str(pair[lang]).strip()))
    return rows


def placeholders(text: str) -> set[str]:
    """The field names of a format string ({n:,} -> n)."""
    return {field for _, field, _, _ in string.Formatter().parse(text) if field}


_ENGLISH = re.compile(r"[A-Za-z]{3,}")
_CJK = re.compile(r"[\u4e00-\u9fff]")


def set_lang(lang: str, names: dict[str, str] | None = None, missing_log: Path | None = None) -> None:
    """Set the process's language, the params names it translates, and where misses are logged."""
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {LANGS}, not {lang!r}")
    _state.update(lang=lang, names=dict(names or {}), missing=missing_log, seen=set(), figures=True)


def keep_figures_in_english() -> None:
    """No CJK font: translated figure labels would be drawn as boxes, so figures stay in English."""
    _state["figures"] = False


def use_params(params, run_dir: Path | None = None) -> None:
    """``set_lang`` from a run's params: tier and segment names in the report's language."""
    set_lang(params.lang, param_names(params), (Path(run_dir) / "i18n_missing.txt") if run_dir and params.lang != "en" else None)


def param_names(params) -> dict[str, str]:
    """English name -> name in ``params.lang`` for tiers and segments (empty in English)."""
    if params.lang == "en":
        return {}
    names = {level.name: level.zh for level in params.tiers.levels if level.zh}
    names.update({seg.en: seg.zh for seg in params.rfm.segments_8.values()})
    names.update({seg.name: seg.zh for seg in params.rfm.segments_named})
    return names


def lang() -> str:
    return _state["lang"]


def _record(text: str) -> None:
    log = _state["missing"]
    if log is None or text in _state["seen"] or not _ENGLISH.search(text) or _CJK.search(text):  # already translated
        return
    _state["seen"].add(text)
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(text.replace("\n", "\\n") + "\n")


def gettext(text: str, lang: str, record: bool = False) -> str:
    """``text`` in ``lang``: its catalog translation, a params name, or itself."""
    if lang == "en" or not text:
        return text
    key = text.strip()
    found = catalog(lang).get(key)
    if found is None and lang == _state["lang"]:
        found = _state["names"].get(key)
    if found is None:
        if record:
            _record(key)
        return text
    return found


def _(text: str, /, **fields) -> str:
    """Translate ``text`` into the current language, then fill its placeholders.

    A miss is logged: ``_`` marks text the code writes, which must have a translation."""
    out = gettext(text, _state["lang"], record=True)
    return out.format(**fields) if fields else out


def name(value) -> str:
    """A value that may be a tier, segment or other translated label; left as it is otherwise
    (data values such as store names are not translated and not logged)."""
    if not isinstance(value, str):
        return value
    return gettext(value, _state["lang"])


def translate_figure(fig):
    """Titles, axis labels, legend entries and tick labels of ``fig`` in the current language.

    Titles and axis labels are written by the code, so a miss is logged; legend entries and tick
    labels may be data (store names, months) and are translated only when the catalog or params
    know them."""
    if _state["lang"] == "en" or fig is None or not _state["figures"]:
        return fig
    for ax in fig.get_axes():
        for text in (ax.title, ax._left_title, ax._right_title, ax.xaxis.label, ax.yaxis.label):
            if text.get_text():
                text.set_text(gettext(text.get_text(), _state["lang"], record=True))
        for axis in (ax.xaxis, ax.yaxis):  # tick labels the catalog or params know (numbers never are)
            labels = [t.get_text() for t in axis.get_majorticklabels()]
            translated = [name(t) for t in labels]
            if translated != labels:
                axis.set_ticks(axis.get_majorticklocs(), translated)
        legend = ax.get_legend()
        if legend is not None:
            if legend.get_title().get_text():
                legend.get_title().set_text(name(legend.get_title().get_text()))
            for text in legend.get_texts():
                text.set_text(name(text.get_text()))
    if fig._suptitle is not None and fig._suptitle.get_text():
        fig._suptitle.set_text(gettext(fig._suptitle.get_text(), _state["lang"], record=True))
    for legend in fig.legends:
        for text in legend.get_texts():
            text.set_text(name(text.get_text()))
    return fig


def localised(plot):
    """Decorator for the ``plots`` functions: the Figure they return is translated."""
    @functools.wraps(plot)
    def wrapper(*args, **kwargs):
        return translate_figure(plot(*args, **kwargs))

    return wrapper


def translate_markdown(source: str, lang: str, on_miss=None) -> str:
    """A notebook's markdown cell in ``lang`` (the whole cell is one catalog entry)."""
    if lang == "en" or not source.strip():
        return source
    found = catalog(lang).get(source.strip())
    if found is None:
        if on_miss is not None and _ENGLISH.search(source):
            on_miss(source.strip())
        return source
    return found


# --------------------------------------------------------------------------- amounts and tier names in the report's language
# (here, not in ``tables`` or ``executive``: the runner writes the client's list of runs with them and imports no pandas)

SYMBOLS = {"CNY": "¥", "RMB": "¥", "USD": "$", "GBP": "£", "EUR": "€", "JPY": "¥"}


def money(value: float, currency: str) -> str:
    symbol = SYMBOLS.get(currency.upper(), currency + " ")
    sign = "-" if value < 0 else ""
    return f"{sign}{symbol}{abs(value):,.2f}"


def compact_money(value: float, currency: str, lang: str) -> str:
    """A large amount short enough for a card: ¥30.2M (en) or ¥3,020.5万 (zh); small amounts in full."""
    if abs(value) < 100_000:
        return money(value, currency)
    symbol = SYMBOLS.get(currency.upper(), currency + " ")
    sign = "-" if value < 0 else ""
    units = ((1e8, "亿"), (1e4, "万")) if lang == "zh" else ((1e9, "B"), (1e6, "M"), (1e3, "k"))
    size, suffix = next((size, suffix) for size, suffix in units if abs(value) >= size)
    return f"{sign}{symbol}{abs(value) / size:,.1f}{suffix}"


def tier_names(params) -> dict[str, str]:
    """Tier name -> its label in ``params.lang``."""
    return {level.name: (level.zh or level.name) if params.lang == "zh" else level.name for level in params.tiers.levels}
