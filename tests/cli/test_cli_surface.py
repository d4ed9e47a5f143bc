"""What every command shows people: help for every option, the same --fail-on everywhere,
examples that survive Python's string rules, numbers the README states the same way."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from ftlens.cli import cli
from ftlens.steps import demo

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = sorted(cli.commands)


@pytest.mark.parametrize("name", COMMANDS)
def test_every_option_says_what_it_does(name: str) -> None:
    silent = [p.opts[0] for p in cli.commands[name].params
              if isinstance(p, click.Option) and not p.hidden and not (p.help or "").strip()]
    assert silent == []


@pytest.mark.parametrize("name", [n for n in COMMANDS if any(
    "--fail-on" in p.opts for p in cli.commands[n].params)])
def test_fail_on_takes_the_severities_and_the_error_alias(name: str) -> None:
    option = next(p for p in cli.commands[name].params if "--fail-on" in p.opts)
    assert isinstance(option.type, click.Choice)
    assert set(option.type.choices) == {"fail", "error", "warn"}


def test_every_command_that_judges_has_fail_on() -> None:
    judged = {"audit", "metrics", "eval", "curves", "report", "run", "train"}
    have = {n for n in COMMANDS if any("--fail-on" in p.opts for p in cli.commands[n].params)}
    assert judged <= have


def test_the_top_level_examples_keep_their_line_breaks() -> None:
    text = CliRunner().invoke(cli, ["--help"]).output
    lines = text.splitlines()
    eval_line = next(ln for ln in lines if ln.strip().startswith("ftlens eval"))
    assert eval_line.rstrip().endswith("\\")
    following = lines[lines.index(eval_line) + 1].strip()
    assert following.startswith("--baseline") and "--data" in following
    # every continued example goes on with an option on the next line
    for i, ln in enumerate(lines):
        if ln.rstrip().endswith("\\"):
            assert lines[i + 1].strip().startswith("--"), ln


def test_quick_demo_numbers_agree_in_code_help_and_readme() -> None:
    n_train, n_valid, n_test = demo.QUICK_SIZES
    batch, epochs = (demo.QUICK_HYPERPARAMETERS[k] for k in ("batch_size", "n_epochs"))
    cap = f"{demo.QUICK_CLASS_CAP:.0%}".replace("%", " %")
    helptext = " ".join(CliRunner().invoke(cli, ["demo", "--help"]).output.split())
    for said in (f"{n_train} training examples", f"{cap}", f"{n_valid} validation and "
                 f"{n_test} test questions", f"{epochs} epochs at batch size {batch}"):
        assert said in helptext, said
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    quick = readme[readme.index("`--quick`"):][:400]
    for said in (f"trains on {n_train} examples", f"more than {cap}",
                 f"{epochs} epochs at batch size {batch}", f"validates on {n_valid}",
                 f"asks {n_test} test questions"):
        assert said in quick, said


def _preds(tmp_path: Path, wrong_every: int) -> Path:
    """60 spam/ham rows, every ``wrong_every``-th answer wrong."""
    rows = [{"label": "spam" if i % 3 == 0 else "ham",
             "prediction": ("spam" if i % 3 == 0 else "ham") if i % wrong_every
             else ("ham" if i % 3 == 0 else "spam")} for i in range(60)]
    path = tmp_path / f"preds-{wrong_every}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.mark.parametrize(("wrong_every", "worst"), [(29, "warn"), (4, "fail")])
def test_metrics_fail_on_trips_on_the_severity_it_names(tmp_path: Path, wrong_every: int,
                                                        worst: str) -> None:
    base = ["metrics", str(_preds(tmp_path, wrong_every)), "--positive", "spam",
            "--bootstrap", "100", "--json"]
    plain = CliRunner().invoke(cli, base)
    assert plain.exit_code == 0  # no gate: a verdict alone never fails the command
    severities = {f["severity"] for f in json.loads(plain.stdout)["findings"]}
    assert worst in severities and (worst == "fail") == ("fail" in severities)
    for gate, trips in (("warn", True), ("fail", worst == "fail"), ("error", worst == "fail")):
        result = CliRunner().invoke(cli, [*base, "--fail-on", gate])
        assert result.exit_code == (1 if trips else 0), (gate, result.output)
    bad = CliRunner().invoke(cli, [*base, "--fail-on", "fatal"])
    assert bad.exit_code == 2 and "'fail', 'error', 'warn'" in bad.output


def test_readme_states_the_exit_codes_of_every_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("## Exit codes"):]
    table = table[:table.index("\n## ", 5)]
    named = set(re.findall(r"`ftlens (\w+)`", table))
    assert set(COMMANDS) <= named, set(COMMANDS) - named
    assert "--debug` goes before the command" in table


def test_findings_and_reasons_wrap_under_their_text_and_keep_markup_literal() -> None:
    from rich.console import Console

    from ftlens.cli import render
    from ftlens.core.decision import Decision, Reason
    from ftlens.core.findings import Finding

    console = Console(width=60, record=True, force_terminal=False, highlight=False)
    words = " ".join(f"word{i}" for i in range(40))
    render.findings(console, [Finding("x_id", "warn", "a title", f"[red]{words}[/red]",
                                      f"do [bold]this[/] {words}")])
    render.decision(console, Decision("not_ready", (Reason("not_ready", "eval", "x_id",
                                                           f"because {words}"),)))
    out = console.export_text()
    assert "[red]word0" in out and "do [bold]this[/]" in out  # user text is not markup
    lines = out.splitlines()
    assert all(len(ln) <= 60 for ln in lines)
    body = [ln for ln in lines if ln and not ln.startswith(("! warn", "verdict:", "  1. "))]
    assert body and all(ln.startswith(" " * 5) and ln == ln.rstrip() for ln in body), lines
    assert any(ln.startswith("  1. because word0") for ln in lines)
