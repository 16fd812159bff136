"""The HTML leaderboard (``leaderboard --html DIR``) in a real headless browser: Debian's chromium driven by selenium
through chromium-driver (``make test`` installs both when run as root). One browser serves every assertion: rendered
rows, the sort order after clicks, images loaded, escaping, and a screenshot kept under the test's tmp dir."""

from __future__ import annotations

import os
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from harness import store
from harness.cli import cli
from metrics.registry import HEADLINE
from tests.harness.report.builders import example_rows

TREE = Path(__file__).parents[1] / "store" / "model_info"
EVIL = '<img src=x onerror="window.pwned=1">evil|name'
# (model, training, clean, robust, per-example values of every headline score)
MODELS = [
    ("std", "standard", 0.91, 0.00, [0.2, 0.3, 0.25, 0.35]),
    ("rob", "pgd-at", 0.86, 0.70, [0.5, 0.6, 0.55, 0.65]),
    (EVIL, "trades", 0.88, 0.65, [0.4, 0.5, 0.45, 0.55]),
]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """A database with three measured runs (headline scores, run figures, one flag, one hostile name) and the
    RobustBench fixtures imported, written as a site by the CLI."""
    root = tmp_path_factory.mktemp("html")
    db = f"sqlite:///{root / 'results' / 'r.db'}"
    (root / "results").mkdir()
    sessions = store.open_database(db)
    with store.transaction(sessions) as s:
        for i, (name, training, clean, robust, values) in enumerate(MODELS):
            model = store.get_or_create_model(
                s,
                name=name,
                source=f"m{i}.py",
                file_sha256=f"{i}" * 64,
                weights_sha256=None,
                info={"training": {"method": training}},
            )
            run_id = f"run{i:09d}"
            flags = [{"code": "low-clean-accuracy", "message": "<b>bold</b> claim"}] if name == EVIL else []
            s.add(
                store.RunRecord(
                    id=run_id,
                    model_id=model.id,
                    dataset="fashion-mnist",
                    threat_model="Linf",
                    eps=0.1,
                    eps_text="0.1",
                    n_examples=1000,
                    seed=0,
                    attack="standard",
                    config_key=run_id,
                    status=store.COMPLETE,
                    clean_acc=clean,
                    robust_acc=robust,
                    config={},
                    provenance={},
                    flags=flags,
                    created_at=datetime(2026, 1, 1) + timedelta(days=i),
                    examples=example_rows(1000, clean, robust),
                )
            )
            for method, metric in HEADLINE:
                s.add(
                    store.MetricRecord(
                        run_id=run_id,
                        method=method,
                        metric=metric,
                        mean=sum(values) / 4,
                        std=0.05,
                        n=4,
                        ci_low=min(values),
                        ci_high=max(values),
                        values=values,
                        details={},
                    )
                )
            figures = root / "results" / "runs" / run_id
            figures.mkdir(parents=True)
            Image.new("RGB", (40, 30), (200, 30 * i, 30)).save(figures / "attributions.png")
    runner = CliRunner()
    result = runner.invoke(cli, ["import-robustbench", str(TREE), "--db", db], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = root / "site"
    result = runner.invoke(cli, ["leaderboard", "--db", db, "--html", str(out)], catch_exceptions=False)
    assert result.exit_code == 0 and result.output == f"wrote {out / 'index.html'}\n"  # --html alone: no markdown
    return out


def test_site_is_self_contained_and_escaped(site):
    pages = sorted(p.name for p in site.glob("*.html"))
    assert pages == [
        "cifar100_Linf.html",
        "cifar10_L2.html",
        "cifar10_Linf.html",
        "cifar10_corruptions.html",
        "fashion-mnist_Linf.html",
        "imagenet_corruptions.html",
        "index.html",
        "run-run000000000.html",
        "run-run000000001.html",
        "run-run000000002.html",
    ]
    page = (site / "fashion-mnist_Linf.html").read_text()
    assert "&lt;img src=x onerror=&quot;window.pwned=1&quot;&gt;evil|name" in page and "<img src=x" not in page
    assert "&lt;b&gt;bold&lt;/b&gt; claim" in page
    for html in site.glob("*.html"):  # nothing from the network: only relative links and the papers' pages
        text = html.read_text()
        assert "//cdn" not in text and 'src="http' not in text and 'href="http://' not in text
    assert (site / "assets" / "leaderboard.js").is_file() and (site / "plots" / "fashion-mnist_Linf_0.1.png").is_file()
    assert "javascript:" not in (site / "cifar10_L2.html").read_text()


@pytest.fixture(scope="module")
def browser():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed: pip install -e '.[dev]'")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        pytest.skip(
            "no chromium/chromedriver: `make test` installs Debian's chromium and chromium-driver when run as root; "
            "otherwise run `apt-get install chromium chromium-driver`"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--disable-gpu", "--window-size=1500,1100", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    if os.geteuid() == 0:
        options.add_argument("--no-sandbox")  # chromium refuses to run as root with its sandbox
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    yield driver
    driver.quit()


def _column(driver, table: int, column: int) -> list[str]:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('table')[arguments[0]].tBodies[0].rows)"
        ".map(r => r.cells[arguments[1]].textContent.trim())",
        table,
        column,
    )


def _header(driver, table: int, name: str):
    from selenium.webdriver.common.by import By

    tables = driver.find_elements(By.TAG_NAME, "table")
    return next(th for th in tables[table].find_elements(By.TAG_NAME, "th") if th.text.startswith(name))


def test_in_a_real_browser(site, browser, tmp_path):
    from selenium.webdriver.common.by import By

    browser.get((site / "index.html").as_uri())
    links = [a.get_attribute("href").rsplit("/", 1)[-1] for a in browser.find_elements(By.CSS_SELECTOR, "main a")]
    assert "fashion-mnist_Linf.html" in links and "cifar10_corruptions.html" in links

    browser.get((site / "fashion-mnist_Linf.html").as_uri())
    assert browser.execute_script("return window.pwned") is None  # the hostile name stayed text
    assert _column(browser, 0, 0) == ["1", "2", "3"]  # ranked by robust accuracy
    models = _column(browser, 0, 1)
    assert models[0] == "rob" and models[1].startswith(EVIL) and models[2] == "std"
    assert "⚠ low-clean-accuracy (note " in models[1]  # numbered after the raw-score note of the row above
    _header(browser, 0, "Clean acc").click()  # accuracies sort best first on the first click
    assert _column(browser, 0, 2) == ["91.0", "88.0", "86.0"]
    assert _header(browser, 0, "Clean acc").get_attribute("aria-sort") == "descending"
    _header(browser, 0, "Clean acc").click()
    assert _column(browser, 0, 2) == ["86.0", "88.0", "91.0"]
    _header(browser, 0, "Model").click()
    assert [m[:3] for m in _column(browser, 0, 1)] == ["<im", "rob", "std"]
    images = browser.execute_script(
        "return Array.from(document.images).map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0])"
    )
    assert images == [["plots/fashion-mnist_Linf_0.1.png", True]]
    shot = tmp_path / "leaderboard-fashion-mnist.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")

    browser.find_element(By.LINK_TEXT, "figures").click()  # the first row's run page, figures copied into the site
    assert browser.current_url.endswith("run-run000000002.html")  # sorted by model: the hostile name first
    assert browser.execute_script("return Array.from(document.images).every(i => i.complete && i.naturalWidth == 40)")

    browser.get((site / "cifar10_Linf.html").as_uri())
    assert _column(browser, 0, 1)[0].startswith("Beta2019Fake")  # ranked by best known robust accuracy
    assert [row[:5] for row in _column(browser, 0, 1)] == ["Beta2", "Delta", "Alpha", "Gamma"]
    _header(browser, 0, "AA robust acc").click()
    assert _column(browser, 0, 4) == ["53.08", "45.00", "40.00", "30.35"]
    paper = browser.find_element(By.LINK_TEXT, "Gamma: k-winners, made up").get_attribute("href")
    assert paper == "https://arxiv.org/abs/1905.00003"
    shot = tmp_path / "leaderboard-cifar10.png"
    browser.save_screenshot(str(shot))
    print(f"screenshot: {shot}")
