"""Task metrics: their arithmetic against scikit-learn, the job spec from the answers, the
selection grammar, and the diagnosis of task-metric curves beside the loss (generated runs with
known peaks and a legacy OpenAI result file written by us)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics as skm
from tests.support.curve_generator import task_run

from ftlens.core.curves import diagnose
from ftlens.core.curves_json import diagnosis_to_dict
from ftlens.core.task_metrics import (
    PREFIX,
    ROWS,
    TaskMetricsError,
    TaskSpec,
    describe,
    select_column,
    task_metrics,
    task_spec,
)
from ftlens.errors import ConfigError
from ftlens.io.training_logs import read_run

LEGACY = Path(__file__).parents[1] / "fixtures" / "curves" / "openai_legacy_classification.csv"


def test_two_class_metrics_equal_scikit_learn_with_the_legacy_threshold() -> None:
    rng = np.random.default_rng(4)
    truth = rng.choice(["ham", "spam"], size=300, p=[0.7, 0.3]).tolist()
    p_spam = np.clip(np.where(np.array(truth) == "spam", 0.65, 0.35)
                     + rng.normal(0, 0.2, 300), 0, 1)
    p_spam[:5] = 0.5  # exactly 0.5 is not above the threshold: ham
    probs = np.column_stack([1 - p_spam, p_spam])
    spec = TaskSpec(("ham", "spam"), "spam", (0.5, 1.0, 2.0))
    got = task_metrics(spec, truth, probs)
    pred = np.where(p_spam > 0.5, "spam", "ham")
    assert (pred[:5] == "ham").all()
    y = np.array(truth) == "spam"
    assert got[ROWS] == 300
    assert got[PREFIX + "accuracy"] == pytest.approx(skm.accuracy_score(truth, pred), abs=1e-12)
    assert got[PREFIX + "precision"] == pytest.approx(
        skm.precision_score(truth, pred, pos_label="spam"), abs=1e-12)
    assert got[PREFIX + "recall"] == pytest.approx(
        skm.recall_score(truth, pred, pos_label="spam"), abs=1e-12)
    for beta in (0.5, 1.0, 2.0):
        assert got[f"{PREFIX}f{beta}"] == pytest.approx(
            skm.fbeta_score(truth, pred, beta=beta, pos_label="spam"), abs=1e-12)
    assert got[PREFIX + "auroc"] == pytest.approx(skm.roc_auc_score(y, p_spam), abs=1e-12)
    assert got[PREFIX + "auprc"] == pytest.approx(skm.average_precision_score(y, p_spam),
                                                  abs=1e-12)
    assert got[PREFIX + "macro_f1"] == pytest.approx(
        skm.f1_score(truth, pred, average="macro"), abs=1e-12)
    assert got[PREFIX + "weighted_f1_score"] == pytest.approx(
        skm.f1_score(truth, pred, average="weighted"), abs=1e-12)
    assert set(got) == set(spec.columns())


def test_four_class_metrics_take_the_most_probable_label() -> None:
    rng = np.random.default_rng(9)
    labels = ("billing", "login", "other", "shipping")
    truth = rng.choice(labels, size=200).tolist()
    probs = rng.dirichlet(np.ones(4), size=200)
    probs[np.arange(200), [labels.index(t) for t in truth]] += 0.3
    got = task_metrics(TaskSpec(labels), truth, probs)
    pred = [labels[i] for i in probs.argmax(axis=1)]
    assert got[PREFIX + "weighted_f1_score"] == pytest.approx(
        skm.f1_score(truth, pred, average="weighted"), abs=1e-12)
    recall = skm.recall_score(truth, pred, labels=list(labels), average=None)
    for label, r in zip(labels, recall, strict=True):
        assert got[f"{PREFIX}recall/{label}"] == pytest.approx(r, abs=1e-12)
    assert PREFIX + "auroc" not in got and PREFIX + "precision" not in got


def test_the_spec_follows_the_audits_label_detection() -> None:
    answers = {"train": ["spam", "ham", "ham", "ham"] * 5, "valid": ["ham", "spam", "ham"] * 3}
    spec = task_spec(answers)
    assert spec.labels == ("ham", "spam") and spec.positive == "spam"  # the rarer one
    assert task_spec(answers, positive=" HAM").positive == "ham"
    with pytest.raises(TaskMetricsError, match="'fraud' is not one of") as err:
        task_spec(answers, positive="fraud")
    assert err.value.option == "positive"
    with pytest.raises(TaskMetricsError, match="3 classes were asked for") as err:
        task_spec(answers, n_classes=3)
    assert err.value.option == "n_classes"
    free = {"train": [f"a long answer number {i}" for i in range(20)],
            "valid": [f"another answer {i}" for i in range(10)]}
    with pytest.raises(TaskMetricsError, match="10 validation answers take 10 distinct"):
        task_spec(free)
    with pytest.raises(TaskMetricsError, match="not plain text"):  # a tool call as answer
        task_spec({"train": answers["train"], "valid": [*answers["valid"], None]})
    with pytest.raises(TaskMetricsError, match="has none"):
        task_spec({"train": answers["train"]})


def test_the_selection_grammar() -> None:
    logged = {PREFIX + "macro_f1", PREFIX + "f1/spam", PREFIX + "recall/spam",
              PREFIX + "recall/ham", PREFIX + "accuracy"}
    assert select_column("f1(Spam)", logged) == PREFIX + "f1/spam"
    assert select_column(" recall( ham ) ", logged) == PREFIX + "recall/ham"
    assert select_column("f1", logged) == PREFIX + "macro_f1"
    assert select_column("loss", logged) is None
    for column in (*logged, PREFIX + "weighted_f1_score"):  # as the findings word them
        assert select_column(describe(column), logged | {column}) == column
    with pytest.raises(ConfigError, match=r"no recall is logged for 'fraud' \(labels: ham"):
        select_column("recall(fraud)", logged)
    with pytest.raises(ConfigError, match="cannot read the selection rule") as err:
        select_column("f1>0.5", logged)
    assert 'e.g. "f1(spam)"' in str(err.value.hint)
    with pytest.raises(ConfigError, match="logged no task metrics"):
        select_column("recall(spam)", set())
    with pytest.raises(ConfigError, match="no classification/auroc"):
        select_column("auroc", logged)


def test_recall_peaking_before_the_loss_bottoms_out_is_named_and_selects_the_earlier_step(
        ) -> None:
    run = task_run(loss_low=80, recall_peak=40)
    d = diagnose(run, "recall(spam)")
    peak = next(f for f in d.findings if f.id == "task_metric_peak")
    assert peak.details["loss_lowest_step"] == 80
    first = peak.details["peaks"][0]
    assert (first["metric"], first["step"]) == (PREFIX + "recall/spam", 40)
    assert d.best_step == 40 and "recall(spam) (as asked)" in d.rule
    clash = next(f for f in d.findings if f.id == "task_metric_disagrees")
    assert clash.title == "validation loss still falls while recall(spam) drops"
    assert "picks step 40" in clash.advice
    by_loss = diagnose(run, "loss")
    assert by_loss.best_step is not None and by_loss.best_step > 40
    default = diagnose(run)  # macro-F1 when task metrics exist
    assert default.selected == PREFIX + "macro_f1" and default.best_step == 40
    assert diagnosis_to_dict(default)["best_checkpoint"]["rule"].startswith("macro-F1")


def test_loss_rising_while_f1_still_improves_is_the_reverse_disagreement() -> None:
    d = diagnose(task_run(loss_low=30, recall_peak=100, rising_loss=True))
    clash = next(f for f in d.findings if f.id == "task_metric_disagrees")
    assert clash.title == "validation loss rises while macro-F1 still improves"
    assert d.best_step == 100


def test_agreeing_curves_raise_no_disagreement() -> None:
    d = diagnose(task_run(loss_low=70, recall_peak=70))
    assert not any(f.id == "task_metric_disagrees" for f in d.findings)
    assert any(f.id == "task_metric_peak" for f in d.findings)


def test_a_legacy_openai_result_file_is_read_and_diagnosed() -> None:
    run = read_run(LEGACY)
    assert run.source == "openai-legacy-csv"
    assert len(run.train_loss) == 120 and len(run.valid_loss or ()) == 12
    assert run.train_accuracy is not None and run.valid_accuracy is not None
    assert set(run.task_metrics) == {PREFIX + m for m in (
        "accuracy", "precision", "recall", "auroc", "auprc", "f1.0")}
    assert run.task_metrics[PREFIX + "recall"].steps.tolist() == [30, 60, 90, 120]
    d = diagnose(run)
    assert d.selected == PREFIX + "f1.0" and d.best_step == 60  # no macro-F1: F1 of positive
    ids = {f.id for f in d.findings}
    assert {"task_metric_peak", "task_metric_disagrees", "loss_decreasing"} <= ids
    assert diagnose(run, "recall").best_step == 60
