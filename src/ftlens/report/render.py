"""Write the report: ``report.html`` (jinja2, autoescaped, self-contained), ``report.md`` and
``report.json``."""

from __future__ import annotations

import base64
import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from jinja2 import Environment, PackageLoader, StrictUndefined, Undefined
from markupsafe import Markup

from ftlens import __version__
from ftlens.errors import ConfigError
from ftlens.io.atomic import write_atomic
from ftlens.report import RESULTS_FILE
from ftlens.report import views as v
from ftlens.report.markdown import markdown_summary
from ftlens.report.model import Report
from ftlens.report.rundir import load_run_dir
from ftlens.report.summary import report_json

VERDICT_WORDS = {"ready": "READY", "not_ready": "NOT READY", "inconclusive": "INCONCLUSIVE"}


@dataclass(frozen=True)
class Written:
    html: Path
    markdown: Path
    json: Path
    report: Report
    summary: dict[str, Any]


def _real(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def pct(x: Any, digits: int = 1) -> str:
    return f"{x:.{digits}%}" if _real(x) else "n/a"


def signed_pct(x: Any) -> str:
    return f"{x:+.1%}" if _real(x) else "n/a"


def num(x: Any, fmt: str = ".4g") -> str:
    return format(x, fmt) if _real(x) else "n/a"


def intc(x: Any) -> str:
    return f"{x:,}" if isinstance(x, int) and not isinstance(x, bool) else num(x)


def usd(x: Any) -> str:
    return f"${x:,.2f}" if _real(x) else "n/a"


def pval(x: Any) -> str:
    return f"{x:.2g}" if _real(x) else "n/a"


def ci(pair: Any, as_pct: bool = True) -> str:
    if not isinstance(pair, list | tuple) or len(pair) != 2:
        return "n/a"
    f = pct if as_pct else num
    return f"{f(pair[0])} – {f(pair[1])}"


def plain(x: Any) -> str:
    """A hyperparameter or note value as text (JSON for lists and objects)."""
    if isinstance(x, str):
        return x
    if isinstance(x, Undefined):
        return ""
    return orjson.dumps(x, default=str).decode()


def environment() -> Environment:
    env = Environment(loader=PackageLoader("ftlens.report", "templates"), autoescape=True,
                      undefined=Undefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(pct=pct, signed_pct=signed_pct, num=num, intc=intc, usd=usd, pval=pval,
                       ci=ci, plain=plain)
    # |tojson escapes <, >, & and ' as \\u sequences: safe inside <script>; NaN is refused
    env.policies["json.dumps_kwargs"] = {"sort_keys": True, "allow_nan": False}
    return env


def script() -> tuple[Markup, str]:
    """The page's one script (our own file, not data) and its CSP hash."""
    env = Environment(loader=PackageLoader("ftlens.report", "templates"),
                      undefined=StrictUndefined, autoescape=True)
    assert env.loader is not None
    source, _, _ = env.loader.get_source(env, "report.js")
    if "</script" in source.lower() or "<!--" in source:
        raise AssertionError("report.js must not contain </script or <!--")
    digest = base64.b64encode(hashlib.sha256(source.encode()).digest()).decode()
    return Markup(source), f"sha256-{digest}"


def render_html(report: Report, *, generated: str, has_results: bool = False) -> str:
    js, js_hash = script()
    ctx: dict[str, Any] = {
        "report": report, "version": __version__, "generated": generated,
        "verdict_words": VERDICT_WORDS, "script": js, "script_hash": js_hash,
        "audit": None, "curves": None, "evaluation": None, "slider": None,
    }
    if (s := report.section("audit")) is not None:
        ctx["audit"] = {"section": s, "view": v.audit_view(s)}
    if (s := report.section("curves")) is not None:
        ctx["curves"] = {"section": s, "view": v.curves_view(s), "has_results": has_results}
    if (s := report.section("eval")) is not None:
        view = v.eval_view(s)
        ctx["evaluation"] = {"section": s, "view": view}
        if view["threshold"] is not None:
            ctx["slider"] = view["threshold"]["slider"]
    return environment().get_template("report.html.j2").render(ctx)


def output_paths(run_dir: Path, out: str | Path | None) -> tuple[Path, Path, Path]:
    html = Path(out) if out is not None else run_dir / "report.html"
    if html.suffix.lower() not in (".html", ".htm"):
        raise ConfigError(f"--out {str(html)!r} must name an .html file",
                          hint="e.g. --out report.html; report.md and report.json go next to it")
    return html, html.with_suffix(".md"), html.with_suffix(".json")


def write_report(run_dir: str | Path, out: str | Path | None = None, *,
                 now: datetime | None = None) -> Written:
    """Render RUN_DIR into ``out`` (default ``RUN_DIR/report.html``) and the ``.md`` and
    ``.json`` files of the same name next to it."""
    root = Path(run_dir)
    html_path, md_path, json_path = output_paths(root, out)
    report = load_run_dir(root)
    generated = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    stamp = generated.isoformat().replace("+00:00", "Z")
    summary = report_json(report, ftlens_version=__version__, generated=stamp)
    html = render_html(report, generated=stamp, has_results=(root / RESULTS_FILE).is_file())
    outputs = ((html_path, html.encode()), (md_path, markdown_summary(report).encode()),
               (json_path, orjson.dumps(summary, option=orjson.OPT_INDENT_2) + b"\n"))
    for path, data in outputs:
        write_atomic(path, data, what="the report", hint="choose a writable location with "
                     "--out")
    return Written(html_path, md_path, json_path, report, summary)
