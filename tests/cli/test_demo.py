"""The demo's whole loop — audit, fine-tune through an embedded service, curves, base vs tuned
evaluation, report — on a small spam set with the tiny model (the real run uses SmolLM2; the
README's command and bench/RESULTS.md record it)."""

from __future__ import annotations

import json
from contextlib import nullcontext
from pathlib import Path

from click.testing import CliRunner
from tests.support.toy_chat import TOY, chat, write_jsonl

from ftlens.cli import cli
from ftlens.steps import demo

ROOT = Path(__file__).resolve().parents[2]


def _data(folder: Path) -> Path:
    folder.mkdir()
    write_jsonl(folder / "train.jsonl", [chat(t, y) for t, y in TOY * 2])
    write_jsonl(folder / "valid.jsonl", [chat(t + " ok", y) for t, y in TOY[:6]])
    write_jsonl(folder / "test.jsonl", [chat(t + " now", y) for t, y in TOY])
    return folder


def test_the_demo_runs_every_stage_and_its_report_agrees(tmp_path: Path) -> None:
    said: list[str] = []
    hooks = demo.Hooks(say=said.append,
                       follow=lambda conn, job_id: _follow(conn, job_id),
                       progress=lambda: nullcontext(lambda *a: None))
    out = tmp_path / "run"
    result = demo.run_demo(_data(tmp_path / "data"), out, hooks, quick=True,
                           model="tiny-random-llama")
    assert [s[:3] for s in said if s[1] == "/"] == ["1/5", "2/5", "3/5", "4/5", "5/5"]
    for name in ("audit.json", "curves.json", "eval.json", "provenance.json", "results.csv",
                 "report.html", "report.md", "report.json", "predictions.jsonl"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "report.json").read_text())
    assert summary["verdict"] == result.verdict
    evaluation = json.loads((out / "eval.json").read_text())
    assert evaluation["run"]["model"] == result.fine_tuned_model
    assert evaluation["run"]["baseline"] == "tiny-random-llama"
    assert evaluation["comparison"] is not None
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["model"] == result.fine_tuned_model
    html = result.report_html.read_text()
    assert result.fine_tuned_model in html and "threshold" in html.lower()


def _follow(conn: object, job_id: str) -> object:
    from ftlens.steps import finetune

    return finetune.follow(conn, job_id, lambda event: None, poll_s=0.2)  # type: ignore[arg-type]


def test_the_demo_names_missing_data(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["demo", "--data", str(tmp_path)])
    assert result.exit_code != 0
    assert "train.jsonl" in str(result.exception)


def test_the_plan_says_how_long(tmp_path: Path) -> None:
    data = _data(tmp_path / "d")
    write_jsonl(data / "train.jsonl", [chat(t, y) for t, y in TOY * 12])  # 144 examples
    quick, full = demo.plan(data, quick=True), demo.plan(data, quick=False)
    assert (quick.n_train, full.n_train) == (48, 144) and quick.n_test == full.n_test == 12
    assert (quick.n_valid, full.n_valid) == (6, 6)
    assert quick.hyperparameters == {"n_epochs": 2, "batch_size": 2,
                                     "learning_rate_multiplier": 2.0}
    assert full.hyperparameters["batch_size"] == demo.BATCH_SIZE
    assert full.estimate_s > quick.estimate_s > 0
    assert "minute" in full.describe() and "no class over 60%" in quick.describe()


def test_the_quick_subset_caps_the_majority_class(tmp_path: Path) -> None:
    labels = ["ham"] * 9 + ["spam"] + ["ham"] * 5 + ["spam"] * 3 + ["ham"] * 2
    src = write_jsonl(tmp_path / "train.jsonl", [chat(f"message {i}", y)
                                                 for i, y in enumerate(labels)])
    from ftlens.io.chat_dataset import read_conversations

    convs = read_conversations(src)
    chosen = [convs[i].line for i in demo.capped(convs, 10, 0.6)]
    out = demo.subset(src, tmp_path / "out.jsonl", chosen)
    kept = [json.loads(line) for line in out.read_text().splitlines()]
    answers = [k["messages"][-1]["content"] for k in kept]
    assert answers.count("ham") == 6 and answers.count("spam") == 4  # 6 = 60 % of 10
    texts = [k["messages"][1]["content"] for k in kept]
    assert texts == sorted(texts, key=lambda t: int(t.split()[1]))  # file order kept
    assert texts[:6] == [f"message {i}" for i in range(6)]
    assert demo.subset(src, tmp_path / "few.jsonl", range(1, 4)).read_text().count("\n") == 3


def test_the_default_data_is_the_bundled_example() -> None:
    """``ftlens demo`` without --data finds the repository's examples/spam."""
    assert demo.check_data(demo.REPO_EXAMPLE) == ROOT / "examples" / "spam"
    plan = demo.plan(demo.REPO_EXAMPLE, quick=False)
    assert (plan.n_train, plan.n_valid, plan.n_test) == (260, 60, 100)
