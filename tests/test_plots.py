"""Figures: Chinese labels are drawn with a CJK font, not as boxes."""

import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib import font_manager  # noqa: E402

from tierbook import plots  # noqa: E402


def _system_has_cjk_font() -> bool:
    return any("cjk" in path.lower() or "wqy" in path.lower() for path in font_manager.findSystemFonts())


def test_chinese_tick_labels_and_titles_find_a_glyph_in_some_font():
    if not _system_has_cjk_font():
        pytest.skip("no CJK font on this machine (Debian: apt-get install fonts-noto-cjk)")
    plots.set_theme()
    fig, ax = plt.subplots()
    ax.set_yticks([0, 1], ["金卡会员", "重要挽留客户"])
    ax.set_title("客户分层 by tier")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig.canvas.draw()
    plt.close(fig)
    missing = [str(w.message) for w in caught if "missing from font" in str(w.message)]
    assert missing == []
