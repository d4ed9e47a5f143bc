"""User text (messages, labels, file names, model names, the run's name) is text, never markup:
in the HTML source, in the slider's embedded JSON, and in the Markdown."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from tests.support.report_run import ATTR, SCRIPT

from ftlens.report.render import write_report

DATA_BLOCK = re.compile(
    r'<script type="application/json" id="ftlens-slider-data">(.*?)</script>', re.S)


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


@pytest.fixture(scope="module")
def written(xss: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    out = tmp_path_factory.mktemp("xss-out") / "report.html"
    w = write_report(xss, out)
    return {"html": w.html.read_text(), "md": w.markdown.read_text(),
            "json": w.json.read_text()}


def test_the_run_really_carries_the_payloads(xss: Path) -> None:
    audit = (xss / "audit.json").read_text()
    for text in (SCRIPT, ATTR):
        assert json.dumps(text)[1:-1] in audit  # labels, model name, file name, messages
    curves = json.loads((xss / "curves.json").read_text())
    assert f"classification/recall/{SCRIPT}" in curves["task_metrics"]["curves"]
    eval_data = json.loads((xss / "eval.json").read_text())
    assert eval_data["positive"] == SCRIPT
    assert {c["label"] for c in eval_data["metrics"]["per_class"]} == {SCRIPT, ATTR}


def test_html_source_has_no_tag_or_attribute_from_the_data(written: dict[str, str]) -> None:
    html = written["html"]
    assert SCRIPT not in html and ATTR not in html
    assert "<img" not in html
    assert '<svg class="chart task"' in html  # the task metric named by a label is drawn
    parser = Tags()
    parser.feed(html)
    names = [t for t, _ in parser.tags]
    assert "img" not in names
    assert names.count("script") == 2  # the slider's JSON and the page's own script
    assert not [a for _, attrs in parser.tags for a in attrs if a.startswith("on")]
    # and the payloads are shown as text: in the banner, the tables, the provenance
    text = "".join(parser.text)
    assert text.count(SCRIPT) >= 5 and text.count(ATTR) >= 5


def test_embedded_json_cannot_break_out_and_parses_back(written: dict[str, str]) -> None:
    (block,) = DATA_BLOCK.findall(written["html"])
    assert "<" not in block and ">" not in block and "&" not in block
    data = json.loads(block)
    assert data["positive"] == SCRIPT and data["negative"] == ATTR


def test_tojson_escapes_html_comment_and_script_end() -> None:
    from ftlens.report.render import environment

    out = environment().from_string("{{ x|tojson }}").render(x="</script><!--'&")
    assert out == '"\\u003c/script\\u003e\\u003c!--\\u0027\\u0026"'
    assert json.loads(out) == "</script><!--'&"


def test_markdown_has_no_markup_from_the_data(written: dict[str, str]) -> None:
    md = written["md"]
    assert "<script" not in md and "<img" not in md
    assert "&lt;script&gt;alert\\(1\\)" in md or "&lt;script&gt;alert(1)" in md


def test_report_json_keeps_the_text_as_data(written: dict[str, str]) -> None:
    data = json.loads(written["json"])
    assert data["provenance"]["model"] == SCRIPT
    assert data["key_numbers"]["eval"]["positive"] == SCRIPT
