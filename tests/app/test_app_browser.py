"""End to end in a real browser: `streamlit run app/Home.py` on a free localhost port, every page opened in
headless Chromium (Debian's `chromium` driven by Playwright through executable_path), a full-page
screenshot saved per page, and no Streamlit exception box on any of them.

On the overlap page the two heatmaps are checked as drawn: every run label of the pairwise matrix is on
its axes in full (no label cut to an ellipsis), and the seed-consistency grid, of the three-seed group
and of a one-seed group, is a block of square-ish cells, not a bar squashed over the page.

Skipped, with the reason, when Playwright or Chromium is missing:
    .venv/bin/pip install playwright && apt-get install -y chromium
Screenshots go to $KDP_SCREENSHOT_DIR when set, else to the test's temporary directory (printed).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from app_paths import APP, PAGES

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        if path := shutil.which(name):
            return path
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def browser_env():
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip(
            "browser test skipped: the Python package `playwright` is not installed (pip install playwright)"
        )
    exe = chromium()
    if exe is None:
        pytest.skip("browser test skipped: no Chromium found (Debian: apt-get install -y chromium)")
    return exe


@pytest.fixture(scope="module")
def server(browser_env, synthetic_url, tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("streamlit") / "streamlit.log"
    env = os.environ | {"KDP_DATABASE_URL": synthetic_url}
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.headless", "true", "--server.address", "127.0.0.1", "--server.port", str(port),
        "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
        "--", "--db", synthetic_url,
    ]  # fmt: skip
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"streamlit did not start; its log:\n{log.read_text()}")
            time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def wait_until_idle(page, timeout_s: float = 60.0) -> None:
    """The page has its title and Streamlit's running indicator has been gone for a moment."""
    page.wait_for_selector("h1", timeout=timeout_s * 1000)
    deadline, quiet_since = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        running = page.locator('[data-testid="stStatusWidget"]').count() > 0
        if running:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > 0.6:
            return
        time.sleep(0.2)
    raise AssertionError("the page kept running")


def snap(page, path: Path) -> None:
    """A full-page screenshot: Streamlit scrolls inside its main block, so the window grows to fit it."""
    height = page.evaluate(
        "Math.max(...[...document.querySelectorAll('[data-testid=\"stMain\"], section.main')]"
        ".map(e => e.scrollHeight), 1000)"
    )
    page.set_viewport_size({"width": 1400, "height": min(int(height) + 50, 12000)})
    time.sleep(0.3)
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size({"width": 1400, "height": 1000})


def chart_texts(chart) -> list[str]:
    """The text of a drawn Vega-Lite chart (Streamlit renders them as SVG)."""
    return chart.evaluate("c => [...c.querySelectorAll('svg text')].map(t => t.textContent)")


def consistency_shape(page) -> str | None:
    """What is wrong with the seed-consistency heatmap (the page's last chart), or None."""
    chart = page.locator('[data-testid="stVegaLiteChart"]').last
    box = chart.bounding_box()
    if box is None or box["width"] < 150 or box["height"] < 150:
        return f"seed-consistency heatmap too small: {box}"
    if not 0.4 <= box["height"] / box["width"] <= 2.5:
        return f"seed-consistency heatmap squashed: {box['width']:.0f} x {box['height']:.0f} px"
    return None


def overlap_checks(page, synthetic_url: str) -> list[str]:
    """The overlap page's heatmaps: labels in full, a seed-consistency grid of cells for 3 and 1 seeds."""
    from kdplatform.analysis import overlap

    failures = []
    labels = list(overlap.overlap_matrix(synthetic_url, 1).index)
    drawn = chart_texts(page.locator('[data-testid="stVegaLiteChart"]').first)
    missing = [x for x in labels if drawn.count(x) < 2]  # once on each axis
    if missing or any(t.endswith("…") for t in drawn):
        failures.append(f"pairwise overlap: labels cut off or missing: {missing}")
    if problem := consistency_shape(page):
        failures.append(problem)
    picker = page.locator('[data-testid="stSelectbox"]').filter(has_text="Student group")
    box = picker.get_by_role("combobox")  # typed, not scrolled to: the option list is virtualized
    box.click()
    box.fill("T=1 (1 seed)")
    page.get_by_role("option").filter(has_text="T=1 (1 seed)").first.click()
    wait_until_idle(page)
    if problem := consistency_shape(page):
        failures.append(f"one seed: {problem}")
    return failures


def test_every_page_in_chromium(server, browser_env, synthetic_url, tmp_path_factory):
    from playwright.sync_api import sync_playwright

    from kdplatform.sql import run_readonly

    near_miss = int(
        run_readonly(
            synthetic_url,
            "SELECT MIN(g.example_id) AS e FROM greedy_continuations g JOIN scan_results s "
            "ON s.run_id = g.run_id AND s.example_id = g.example_id WHERE NOT s.memorized",
        )["e"][0]
    )

    shots = Path(os.environ.get("KDP_SCREENSHOT_DIR") or tmp_path_factory.mktemp("screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    profile = tmp_path_factory.mktemp("chromium-profile")
    failures = []
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(profile),
            executable_path=browser_env,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1400, "height": 1000},
        )
        try:
            page = ctx.new_page()
            for i, (name, path) in enumerate(PAGES.items()):
                url = server + ("/" if i == 0 else "/" + Path(path).stem) + "?job=bench"
                page.goto(url, wait_until="domcontentloaded")
                wait_until_idle(page)
                snap(page, shots / f"{i + 1:02d}-{name}.png")
                boxes = page.locator('[data-testid="stException"]')
                if boxes.count():
                    failures.append(f"{name}: {boxes.first.inner_text()[:2000]}")
                title = page.locator("h1").first.inner_text()
                if not title.strip():
                    failures.append(f"{name}: no title")
                if name == "overlap":
                    failures += overlap_checks(page, synthetic_url)
                    snap(page, shots / f"{i + 1:02d}-{name}-one-seed.png")
            # two interactions: an example with a near miss (highlighted mismatch), a console query
            page.goto(f"{server}/examples?job=bench&example={near_miss}", wait_until="domcontentloaded")
            wait_until_idle(page)
            if page.locator("[data-kdp=mismatch]").count() == 0:
                failures.append(f"examples: no highlighted mismatch for example {near_miss}")
            if page.locator('[data-testid="stException"]').count():
                failures.append("examples near miss: exception box")
            snap(page, shots / "09-examples-near-miss.png")
            page.goto(f"{server}/console?job=bench", wait_until="domcontentloaded")
            wait_until_idle(page)
            page.get_by_role("button", name="Run").click()
            page.wait_for_selector("text=Download CSV", timeout=60_000)
            wait_until_idle(page)
            snap(page, shots / "10-console-result.png")
            if page.locator('[data-testid="stException"]').count():
                failures.append("console result: exception box")
        finally:
            ctx.close()
    print(f"screenshots in {shots}")
    assert not failures, "\n\n".join(failures)
    assert len(list(shots.glob("*.png"))) >= len(PAGES)
