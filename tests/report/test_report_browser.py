"""The report in a real browser (Debian's chromium driven by Playwright), opened from file://.

Needs ``pip install playwright`` (the dev extra) and ``apt-get install -y chromium``; the test
fails, saying so, when either is missing. Never run ``playwright install`` (it downloads).
Screenshots go to test-artifacts/ (gitignored).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.support.report_run import ATTR, ROOT, SCRIPT

from ftlens.core.threshold import OperatingPoint, at_threshold, table
from ftlens.report.render import write_report
from ftlens.steps.judge import evaluate_files, options_from_cli

ARTIFACTS = ROOT / "test-artifacts"
SECTIONS = ("verdict", "audit", "curves", "eval", "tradeoff", "comparison", "provenance")
COUNTS = ("tp", "fp", "fn", "tn")


@dataclass
class Opened:
    page: Any
    problems: list[str] = field(default_factory=list)  # console errors, page errors
    dialogs: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


def open_report(browser: Any, html: Path) -> Opened:
    if isinstance(browser, str):  # no browser here: fail (never skip), saying how to fix it
        pytest.fail(browser, pytrace=False)
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    opened = Opened(page)
    page.on("console", lambda m: opened.problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: opened.problems.append(str(e)))
    page.on("dialog", lambda d: (opened.dialogs.append(d.message), d.dismiss()))
    page.on("request", lambda r: opened.requests.append(r.url))
    page.goto(html.as_uri())
    page.wait_for_load_state("load")
    return opened


@pytest.fixture(scope="module")
def spam_report(spam: tuple[Path, dict[str, Path]]) -> Path:
    return write_report(spam[0]).html


@pytest.fixture(scope="module")
def core(spam: tuple[Path, dict[str, Path]]) -> tuple[Any, Any]:
    """The core's threshold analysis of the same predictions file, and its count table."""
    options, fields = options_from_cli()
    t = evaluate_files(spam[1]["tuned"], options, fields).threshold
    assert t is not None
    return t, table(t.is_positive, t.scores)


def shown(page: Any) -> dict[str, float]:
    out = {}
    for key in ("value", "precision", "recall", "f1", *COUNTS):
        value = page.get_attribute(f"#thr-{key}", "data-value")
        assert value is not None, key
        out[key] = float(value)
    return out


def assert_matches_core(page: Any, op: OperatingPoint) -> None:
    """The page shows exactly the core's numbers for this threshold."""
    s = shown(page)
    assert (s["precision"], s["recall"], s["f1"]) == (op.precision, op.recall, op.f1)
    assert tuple(int(s[k]) for k in COUNTS) == (op.tp, op.fp, op.fn, op.tn)
    assert page.inner_text("#thr-recall") == f"{op.recall:.1%}"
    assert page.inner_text("#thr-precision") == f"{op.precision:.1%}"
    assert page.inner_text("#thr-tp") == str(op.tp)
    assert page.inner_text("#thr-fp") == str(op.fp)


def test_sections_and_no_errors_or_network(browser: Any, spam_report: Path) -> None:
    opened = open_report(browser, spam_report)
    page = opened.page
    for section in SECTIONS:
        assert page.locator(f"#{section}").count() == 1, section
        assert page.locator(f"#{section}").is_visible()
    for selector in ("svg.chart.loss path.train-smooth", "svg.chart.loss path.valid-smooth",
                     "svg.chart.loss line.vl-onset", "svg.chart.loss line.vl-best",
                     "svg.chart.pr path.pr", "#confusion td.cell", "#per-class",
                     "#audit-labels", "#data-files", "#comparison-table"):
        assert page.locator(selector).count() >= 1, selector
    assert page.inner_text("#verdict-word") == "NOT READY"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
    assert opened.problems == []
    assert opened.requests == [spam_report.as_uri()]  # nothing but the page itself
    page.close()


def test_the_banner_argues_the_verdict_and_metrics_show_both_columns(
        browser: Any, leaky: Path) -> None:
    written = write_report(leaky)
    opened = open_report(browser, written.html)
    page = opened.page
    reasons = [r.text for r in written.report.decision.reasons]
    assert page.locator("#reasons li").all_inner_texts() == reasons
    assert page.inner_text("#verdict-word") == (
        written.report.verdict.replace("_", " ").upper())
    header = page.locator("#leakage tr").first.inner_text()
    assert "all 120 rows" in header and "unseen 105 rows" in header
    metrics = [row.split("\t")[0] for row in page.locator("#leakage tr").all_inner_texts()[1:]]
    assert sorted(metrics) == ["accuracy", "f1(spam)", "macro-F1", "precision(spam)",
                               "recall(spam)"]
    assert page.inner_text("#leaked-rows summary") == "15 rows seen in training"
    assert "the verdict are those of the 105 unseen rows" in page.inner_text("#leakage-note")
    assert opened.problems == []
    page.close()


def test_slider_shows_what_the_core_computes(browser: Any, spam_report: Path,
                                             core: tuple[Any, Any]) -> None:
    analysis, counts = core
    opened = open_report(browser, spam_report)
    page = opened.page
    # it starts at the chosen threshold, with the core's numbers for it
    assert analysis.chosen is not None
    assert shown(page)["value"] == round(analysis.chosen.threshold, 6)
    assert_matches_core(page, analysis.chosen)
    start_recall, start_tp = page.inner_text("#thr-recall"), page.inner_text("#thr-tp")
    cx = page.get_attribute("#pr-current", "cx")
    slider = page.locator("#thr-slider")
    seen = set()
    for keys in (["ArrowLeft"] * 6, ["ArrowLeft"] * 9, ["Home"], ["End"], ["ArrowLeft"] * 3):
        slider.focus()
        for key in keys:
            page.keyboard.press(key)
        t = shown(page)["value"]
        assert t in analysis.scores  # each position is one of the scores
        assert_matches_core(page, at_threshold(counts, t))
        seen.add(page.inner_text("#thr-recall"))
    assert len(seen) >= 3 and start_recall not in {page.inner_text("#thr-recall")}
    assert page.inner_text("#thr-tp") != start_tp or page.inner_text("#thr-fp") != "0"
    assert page.get_attribute("#pr-current", "cx") != cx  # the marker moved on the PR curve
    # the lowest threshold flags every row; the rule is score >= threshold
    slider.focus()
    page.keyboard.press("Home")
    assert shown(page)["value"] == float(np.min(analysis.scores))
    assert shown(page)["recall"] == 1.0 and int(shown(page)["fn"]) == 0
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator("#tradeoff").screenshot(path=str(ARTIFACTS / "report-slider.png"))
    # a typed threshold: 0.5 gives what `ftlens metrics` reported at 0.5
    page.fill("#thr-input", "0.5")
    page.keyboard.press("Tab")
    assert shown(page)["value"] == 0.5
    assert_matches_core(page, at_threshold(counts, 0.5))
    assert_matches_core(page, analysis.at_half)
    page.click("#thr-reset")
    assert_matches_core(page, analysis.chosen)
    assert opened.problems == []
    page.close()


def test_slider_matches_core_on_every_position(browser: Any, spam_report: Path,
                                               core: tuple[Any, Any]) -> None:
    """All positions at once, read through the page's own controls."""
    analysis, counts = core
    page = open_report(browser, spam_report).page
    values = page.evaluate("""() => {
        const s = document.getElementById('thr-slider'), out = [];
        for (let i = 0; i <= Number(s.max); i++) {
            s.value = String(i);
            s.dispatchEvent(new Event('input'));
            const v = id => Number(document.getElementById(id).getAttribute('data-value'));
            out.push([v('thr-value'), v('thr-tp'), v('thr-fp'), v('thr-recall'),
                      v('thr-precision'), v('thr-f1')]);
        }
        return out;
    }""")
    assert len(values) == len(np.unique(analysis.scores))
    for t, tp, fp, recall, precision, f1 in values:
        op = at_threshold(counts, t)
        assert (tp, fp, recall, precision, f1) == (op.tp, op.fp, op.recall, op.precision, op.f1)
    page.close()


def test_injected_markup_stays_text_in_the_browser(browser: Any, xss: Path,
                                                   tmp_path: Path) -> None:
    html = write_report(xss, tmp_path / "report.html").html
    opened = open_report(browser, html)
    page = opened.page
    assert page.evaluate("document.querySelectorAll('img').length") == 0
    assert page.evaluate("document.querySelectorAll('[onerror]').length") == 0
    assert page.evaluate("document.scripts.length") == 2
    body = page.inner_text("body")
    assert SCRIPT in body and ATTR in body
    assert page.inner_text("#verdict h1").endswith(xss.name)
    # the slider still works with these labels
    page.locator("#thr-slider").focus()
    page.keyboard.press("End")
    assert shown(page)["value"] > 0
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "report-xss.png"), full_page=True)
    assert opened.dialogs == []
    assert opened.problems == []
    page.close()
