"""The HTML leaderboard (``leaderboard --html DIR``) in a real headless browser: Debian's chromium driven by selenium
through chromium-driver (``make test`` installs both when run as root). One browser serves every assertion: the
ranking by protocol, search and filters narrowing the rows, paging, header sorts, column tooltips, the compact view,
the scatter's metric choice and hover, a run page's numbers and figures, escaping; a screenshot of each page kind is
kept under the test's tmp dir."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from harness import store
from harness.cli import cli
from tests.harness.report.stored import add_run

TREE = Path(__file__).parents[1] / "store" / "model_info"
EVIL = '<img src=x onerror="window.pwned=1">evil|name'
# (model, run id, training, clean, robust, attack, n, per-image values of every headline score)
MODELS = [
    ("std", "run000000000", "standard", 0.91, 0.00, "standard", 1000, [0.2, 0.3, 0.25, 0.35]),
    ("rob", "run000000001", "pgd-at", 0.86, 0.70, "standard", 1000, [0.5, 0.6, 0.55, 0.65]),
    (EVIL, "run000000002", "trades", 0.88, 0.65, "standard", 1000, [0.4, 0.5, 0.45, 0.55]),
    ("fast", "run000000003", "fgsm-rs", 0.84, 0.66, "apgd-ce", 1000, [0.3, 0.4, 0.35, 0.45]),  # another attack
    ("short", "run000000004", "pgd-at", 0.85, 0.72, "standard", 500, [0.3, 0.35, 0.4, 0.45]),  # fewer images
]
PAGED = 27  # models of a second board (eps 0.05): more than a page of 25 rows


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, str]:
    """A database with measured runs of two protocols besides the ranked one, figures (one run's recorded figure
    missing), a flag and a hostile name, a second board of 27 models, and the RobustBench fixtures; the site written
    by the CLI. Returns the site and the command's stderr."""
    root = tmp_path_factory.mktemp("html")
    (root / "results").mkdir()
    db = f"sqlite:///{root / 'results' / 'r.db'}"
    with store.transaction(store.open_database(db)) as s:
        for day, (name, run_id, training, clean, robust, attack, n, values) in enumerate(MODELS):
            flags = [{"code": "low-clean-accuracy", "message": "<b>bold</b> claim"}] if name == EVIL else []
            details = {
                "autoattack": {"accuracy_after": {"clean": clean, "apgd-ce": robust}},
                "figures": ["attributions.png", "adversarial.png"],
            }
            add_run(
                s, name=name, run_id=run_id, values=values, clean=clean, robust=robust, training=training,
                attack=attack, n=n, day=day, flags=flags, details=details,
                controls={"control_random": [0.0, 0.01, -0.01, 0.0], "control_input": [0.1, 0.1, 0.12, 0.08]},
            )  # fmt: skip
            figures = root / "results" / "runs" / run_id
            figures.mkdir(parents=True)
            Image.new("RGB", (40, 30), (200, 30 * day, 30)).save(figures / "attributions.png")
            if name != "std":  # std's adversarial.png is recorded but missing: a warning, never silent
                Image.new("RGB", (40, 30), (30, 200, 30 * day)).save(figures / "adversarial.png")
        for i in range(PAGED):
            values = [0.1 * (i % 7), 0.2, 0.3]
            add_run(s, name=f"m{i:02d}", run_id=f"page{i:08d}", values=values, robust=i / 40, eps="0.05")
    runner = CliRunner()
    result = runner.invoke(cli, ["import-robustbench", str(TREE), "--db", db], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = root / "site"
    result = runner.invoke(cli, ["leaderboard", "--db", db, "--html", str(out), "--quiet"], catch_exceptions=False)
    assert result.exit_code == 0 and result.stdout == f"wrote {out / 'index.html'}\n"  # --html alone: no markdown
    return out, result.stderr


@pytest.fixture(scope="module")
def site(built) -> Path:
    return built[0]


def test_site_is_self_contained_escaped_and_warns_of_missing_figures(built):
    site, stderr = built
    pages = sorted(p.name for p in site.glob("*.html"))
    assert [p for p in pages if not p.startswith("run-")] == [
        "cifar100_Linf.html",
        "cifar10_L2.html",
        "cifar10_Linf.html",
        "cifar10_corruptions.html",
        "fashion-mnist_Linf.html",
        "imagenet_corruptions.html",
        "index.html",
    ]
    assert len([p for p in pages if p.startswith("run-")]) == len(MODELS) + PAGED  # one page per measured row
    page = (site / "fashion-mnist_Linf.html").read_text()
    assert "&lt;img src=x onerror=&quot;window.pwned=1&quot;&gt;evil|name" in page and "<img src=x" not in page
    assert "&lt;b&gt;bold&lt;/b&gt; claim" in page
    for html in site.glob("*.html"):  # nothing from the network: only relative links and the papers' pages
        text = html.read_text()
        assert "//cdn" not in text and 'src="http' not in text and 'href="http://' not in text
    assert (site / "assets" / "leaderboard.js").is_file() and (
        site / "runs" / "run000000001" / "adversarial.png"
    ).is_file()
    assert "javascript:" not in (site / "cifar10_L2.html").read_text()
    assert stderr.startswith("warning: 1 run(s) have missing figures (run000000000)")  # std's adversarial.png
    assert "Missing (not in" in (site / "run-run000000000.html").read_text()


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


FIND = (
    "const root = arguments[0] ? document.getElementById(arguments[0]) : document;"
    "const t = Array.from(root.querySelectorAll('table')).find(t => t.caption && "
    "t.caption.textContent.startsWith(arguments[1]));"
)


def _column(driver, caption: str, column: int, section: str = "fashion-mnist-Linf-0.1") -> list[str]:
    """The shown cells of ``column`` in the table of ``section`` whose caption starts with ``caption``."""
    return driver.execute_script(
        FIND + "return Array.from(t.tBodies[0].rows).filter(r => !r.hidden)"
        ".map(r => r.cells[arguments[2]].textContent.trim())",
        section,
        caption,
        column,
    )


def _header(driver, caption: str, name: str, section: str = "fashion-mnist-Linf-0.1"):
    return driver.execute_script(
        FIND + "return Array.from(t.tHead.rows[0].cells).find(th => th.textContent.startsWith(arguments[2]))",
        section,
        caption,
        name,
    )


def _shot(driver, path: Path) -> None:
    assert driver.save_screenshot(str(path)) and path.stat().st_size > 10_000
    print(f"screenshot: {path}")


def test_the_board_in_a_real_browser(site, browser, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    browser.get((site / "index.html").as_uri())
    links = [a.get_attribute("href").rsplit("/", 1)[-1] for a in browser.find_elements(By.CSS_SELECTOR, "main a")]
    assert (
        "fashion-mnist_Linf.html#fashion-mnist-Linf-0.1" in links
        and "cifar10_corruptions.html#cifar10-corruptions-all" in links
    )
    _shot(browser, tmp_path / "index.png")

    browser.get((site / "fashion-mnist_Linf.html").as_uri())
    assert browser.execute_script("return window.pwned") is None  # the hostile name stayed text
    ranked = "Ranked: AutoAttack standard, n=1000"
    assert _column(browser, ranked, 0) == ["1", "2", "3"]  # one protocol: standard on the most images
    models = _column(browser, ranked, 1)
    assert models[0] == "rob" and models[1].startswith(EVIL) and models[2] == "std"
    assert "⚠ low-clean-accuracy" in models[1]
    others = "Not ranked"
    assert _column(browser, others, 0) == ["apgd-ce, n=1000", "AutoAttack standard, n=500"]
    # the compact view hides the detail columns; the headers explain their metric and arrow
    abpc = _header(browser, ranked, "ABPC norm. ↑").get_attribute("title")
    assert "LeRF minus MoRF" in abpc and "normalised between the model's own floor" in abpc
    assert "↑ higher is better" in abpc
    assert "Gini index of |attributions|" in _header(browser, ranked, "Gini ↑").get_attribute("title")
    assert not _header(browser, ranked, "Attack").is_displayed()
    hidden = browser.execute_script(
        "return Array.from(document.querySelectorAll('th.detail')).every(th => getComputedStyle(th).display === 'none')"
    )
    assert hidden
    browser.find_element(By.CSS_SELECTOR, ".toolbar .show-detail").click()
    assert _header(browser, ranked, "Attack").is_displayed()
    # a mark sits beside its value, its note's text on hover
    marks = [m.get_attribute("title") for m in browser.find_elements(By.CSS_SELECTOR, "table.filterable a.mark")]
    assert any(t.startswith("† does not beat its bar") for t in marks)  # Gini, near the controls
    assert any(t.startswith("raw: the run stores no floor") for t in marks)  # curve scores without stored bounds
    # sorting: accuracies best first on the first click
    _header(browser, ranked, "Clean acc").click()
    assert _column(browser, ranked, 2) == ["91.0", "88.0", "86.0"]
    assert _header(browser, ranked, "Clean acc").get_attribute("aria-sort") == "descending"
    _header(browser, ranked, "Clean acc").click()
    assert _column(browser, ranked, 2) == ["86.0", "88.0", "91.0"]
    # paging: the other board (eps 0.05) has 27 ranked rows: 25 shown, the next page shows the rest
    second = "fashion-mnist-Linf-0.05"
    assert len(_column(browser, ranked, 1, second)) == 25
    browser.execute_script(f"document.getElementById('{second}').querySelector('nav.pager .next').click()")
    assert _column(browser, ranked, 1, second) == ["m01", "m00"]  # ranked by robust accuracy: the least robust last
    # search narrows the rows of every table; the filters too
    search = browser.find_element(By.CSS_SELECTOR, ".toolbar .filter-model")
    search.send_keys("rob")
    assert _column(browser, ranked, 1) == ["rob"] and _column(browser, others, 1) == []
    assert _column(browser, ranked, 1, second) == []
    # the count is of the boards' rows (3 ranked, 2 apart, 27 on the second board), not the folded detail tables
    assert browser.find_element(By.CSS_SELECTOR, ".toolbar .count").text == "1 of 32 rows match"
    browser.execute_script(
        "const s = document.querySelector('.toolbar .filter-model'); s.value = ''; s.dispatchEvent(new Event('input'));"
    )
    assert len(_column(browser, ranked, 1)) == 3
    Select(browser.find_element(By.CSS_SELECTOR, ".toolbar .filter-attack")).select_by_value("apgd-ce")
    assert _column(browser, ranked, 1) == [] and _column(browser, others, 1) == ["fast"]
    Select(browser.find_element(By.CSS_SELECTOR, ".toolbar .filter-attack")).select_by_value("")
    Select(browser.find_element(By.CSS_SELECTOR, ".toolbar .filter-training")).select_by_value("pgd-at gap-cnn")
    assert _column(browser, ranked, 1) == ["rob"] and _column(browser, others, 1) == ["short"]
    Select(browser.find_element(By.CSS_SELECTOR, ".toolbar .filter-training")).select_by_value("")
    # the scatter: one plot at a time, the metric picked; hovering a point names it and highlights its row
    figure = browser.find_element(By.CSS_SELECTOR, "section#fashion-mnist-Linf-0\\.1 figure.scatters")
    visible = [svg for svg in figure.find_elements(By.CSS_SELECTOR, "svg.scatter") if svg.is_displayed()]
    assert len(visible) == 1 and visible[0].get_attribute("data-metric") == "abpc"
    Select(figure.find_element(By.CSS_SELECTOR, "select.metric")).select_by_visible_text("Gini ↑")
    visible = [svg for svg in figure.find_elements(By.CSS_SELECTOR, "svg.scatter") if svg.is_displayed()]
    assert len(visible) == 1 and visible[0].get_attribute("data-metric") == "sparseness"
    assert figure.find_element(By.CSS_SELECTOR, ".describe").text.startswith("Gini: Gini index")
    point = visible[0].find_element(By.CSS_SELECTOR, "g.point[data-model='rob'] circle")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", point)
    ActionChains(browser).move_to_element(point).perform()
    tooltip = browser.find_element(By.CSS_SELECTOR, ".tooltip")
    assert tooltip.is_displayed() and tooltip.text.startswith("rob: robust 70.0% [")
    assert browser.find_element(By.CSS_SELECTOR, "tr.highlight[data-model='rob']")
    _shot(browser, tmp_path / "board.png")


def test_a_run_page_in_a_real_browser(site, browser, tmp_path):
    from selenium.webdriver.common.by import By

    browser.get((site / "fashion-mnist_Linf.html").as_uri())
    browser.find_element(By.LINK_TEXT, "rob").click()  # the model links to its run page
    assert browser.current_url.endswith("run-run000000001.html")
    numbers = browser.find_element(By.CSS_SELECTOR, "section.numbers").text
    assert "clean accuracy 86.0% [83.7, 88.0]" in numbers and "AA robust accuracy 70.0% [67.1, 72.8]" in numbers
    assert "robust accuracy after APGD-CE: 70.00%" in numbers
    assert "ABPC ↑ 0.575 [0.500, 0.650] 4" in numbers  # the headline scores
    assert "torch 2.14.1" in browser.find_element(By.TAG_NAME, "main").text  # versions
    images = browser.execute_script(
        "return Array.from(document.images).map(i => [i.getAttribute('src'), i.complete && i.naturalWidth])"
    )
    assert images == [["runs/run000000001/adversarial.png", 40], ["runs/run000000001/attributions.png", 40]]
    _shot(browser, tmp_path / "run.png")
    browser.find_element(By.CSS_SELECTOR, "p.back a").click()  # back to its board
    assert browser.current_url.endswith("fashion-mnist_Linf.html#fashion-mnist-Linf-0.1")


def test_reported_entries_in_a_real_browser(site, browser, tmp_path):
    from selenium.webdriver.common.by import By

    browser.get((site / "cifar10_Linf.html").as_uri())
    reported, section = "Reported elsewhere", "cifar10-Linf-8_255"
    assert [row[:5] for row in _column(browser, reported, 1, section)] == ["Beta2", "Delta", "Alpha", "Gamma"]
    _header(browser, reported, "AA robust acc", section).click()
    assert _column(browser, reported, 4, section) == ["53.08", "45.00", "40.00", "30.35"]
    paper = browser.find_element(By.LINK_TEXT, "Gamma: k-winners, made up").get_attribute("href")
    assert paper == "https://arxiv.org/abs/1905.00003"
    _shot(browser, tmp_path / "cifar10.png")
