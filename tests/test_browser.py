"""Every page of a demo run opened as a stakeholder would: headless Chromium, network blocked.

Fails on any request that leaves the file (http, https, ws ...), any console error or page error,
any broken image, a visible traceback, and a page wider than a 375 px phone screen. Screenshots of
the run index and the summary at desktop and phone widths go to the test's output folder.
Debian's chromium is installed with apt-get when missing (as root); elsewhere the test skips and
says why.
"""

import os
import shutil
import subprocess

import pytest

from tierbook.pipeline import SECTIONS

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-quic", "--no-first-run"]


def _chromium() -> str:
    if os.path.exists(CHROMIUM):
        return CHROMIUM
    if shutil.which("apt-get") and os.geteuid() == 0:
        done = subprocess.run(["apt-get", "install", "-y", "-q", "chromium", "fonts-noto-cjk"], capture_output=True, text=True)
        if done.returncode == 0 and os.path.exists(CHROMIUM):
            return CHROMIUM
        pytest.skip(f"browser test: apt-get could not install chromium ({done.stderr.strip().splitlines()[-1:]})")
    pytest.skip("browser test: no /usr/bin/chromium and no apt-get as root to install it (Debian: apt-get install chromium)")


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api", reason="browser test: playwright is not installed (pip install playwright)")
    path = _chromium()
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=ARGS)
        yield b
        b.close()


def _visit(browser, url: str, width: int, height: int = 900):
    """Open ``url``; return (page, requests that left the file, console errors)."""
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    outside, errors = [], []

    def route(r):
        if r.request.url.startswith(("file:", "data:", "blob:", "about:")):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url, wait_until="load")
    return context, page, outside, errors


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_page_offline_without_errors_broken_images_or_tracebacks(browser, demo_project, demo_zh, lang):
    project, run = demo_project if lang == "en" else (demo_project[0], demo_zh[0])
    pages = ["index.html"] + [f"{s.name}.html" for s in SECTIONS] + ["../index.html"]
    for name in pages:
        context, page, outside, errors = _visit(browser, (run.run_dir / name).resolve().as_uri(), 1280)
        broken = page.evaluate("Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src.slice(0, 60))")
        text = page.inner_text("body")
        images = page.evaluate("document.images.length")
        context.close()
        assert outside == [], f"{name} requested {outside[:3]}"
        assert errors == [], f"{name} logged {errors[:3]}"
        assert broken == [], f"{name} has broken images {broken}"
        assert "Traceback" not in text and "Error:" not in text, name
        if name not in ("index.html", "../index.html"):
            assert len(text) > 200, f"{name} is nearly empty"
        if name in ("rfm.html", "clv.html", "ab_test.html"):
            assert images >= 2, f"{name} shows {images} figures"


@pytest.mark.slow
def test_index_and_summary_fit_a_phone_and_are_captured(browser, demo_project, tmp_path):
    _, run = demo_project
    for name in ("index.html", "summary.html"):
        for label, width in (("desktop", 1280), ("phone", 375)):
            context, page, _, _ = _visit(browser, (run.run_dir / name).as_uri(), width, 812)
            page.screenshot(path=str(tmp_path / f"{name[:-5]}-{label}.png"), full_page=True)
            overflow = page.evaluate("document.documentElement.scrollWidth")
            context.close()
            if label == "phone":
                assert overflow <= width + 1, f"{name} is {overflow} px wide on a {width} px screen"
            assert (tmp_path / f"{name[:-5]}-{label}.png").stat().st_size > 10_000


def test_the_checks_catch_a_page_that_calls_out(browser, tmp_path):
    """The detectors above are not blind: a page with a CDN script, a console error and a broken image."""
    page_file = tmp_path / "bad.html"
    page_file.write_text('<html><body><script src="https://cdn.example.com/require.js"></script>'
                         '<script>console.error("boom")</script><img src="missing.png"><p>text</p></body></html>', encoding="utf-8")
    context, page, outside, errors = _visit(browser, page_file.as_uri(), 800)
    broken = page.evaluate("Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).length")
    context.close()
    assert outside == ["https://cdn.example.com/require.js"]
    assert any("boom" in e for e in errors) and broken == 1


def _fonts_used(page, selector: str) -> list[str]:
    """The fonts Chromium actually drew an element's text with (DevTools CSS.getPlatformFontsForNode)."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument")["root"]["nodeId"]
    node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
    assert node, f"no element {selector}"
    fonts = []
    for child in [node] + cdp.send("DOM.querySelectorAll", {"nodeId": node, "selector": "*"})["nodeIds"]:
        fonts += [f["familyName"] for f in cdp.send("CSS.getPlatformFontsForNode", {"nodeId": child})["fonts"]]
    return fonts


@pytest.mark.slow
def test_chinese_pages_are_drawn_with_a_cjk_font_at_desktop_and_phone_width(browser, demo_zh, tmp_path):
    run, _ = demo_zh
    for name, selector in (("summary.html", "h1"), ("summary.html", ".tb-cards"), ("index.html", "table.tb-table"), ("rfm.html", "h2")):
        context, page, _, _ = _visit(browser, (run.run_dir / name).as_uri(), 1280)
        text = page.inner_text(selector)
        fonts = _fonts_used(page, selector)
        context.close()
        assert any("\u4e00" <= ch <= "\u9fff" for ch in text), f"{name} {selector} has no Chinese: {text[:80]!r}"
        assert any("CJK" in f or "Han" in f or "Hei" in f or "PingFang" in f for f in fonts), f"{name} {selector} drawn with {set(fonts)}"
        assert not any("Last Resort" in f for f in fonts)
    for label, width in (("desktop", 1280), ("phone", 375)):
        context, page, _, _ = _visit(browser, (run.run_dir / "summary.html").as_uri(), width, 812)
        page.screenshot(path=str(tmp_path / f"summary-zh-{label}.png"), full_page=True)
        overflow = page.evaluate("document.documentElement.scrollWidth")
        context.close()
        if label == "phone":
            assert overflow <= width + 1, f"summary.html (zh) is {overflow} px wide on a {width} px screen"


@pytest.mark.slow
def test_chinese_figures_are_drawn_with_a_cjk_font(demo_zh):
    """matplotlib warns "Glyph ... missing from font(s)" for every character it draws as a box; the
    executed notebooks keep those warnings (the HTML does not show them)."""
    from tierbook.plots import cjk_font

    run, _ = demo_zh
    if cjk_font() is None:
        pytest.skip("no CJK font installed (Debian: apt-get install fonts-noto-cjk): the zh figures keep English labels")
    for notebook in sorted((run.run_dir / "notebooks").glob("*.ipynb")):
        text = notebook.read_text(encoding="utf-8")
        assert "missing from font" not in text and "missing from current font" not in text, notebook.name
