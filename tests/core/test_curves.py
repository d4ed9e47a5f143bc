"""The loss-curve diagnosis: bars on generated curves with known truth, and unit cases."""

from __future__ import annotations

import dataclasses
import json
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.support.curve_generator import KINDS, generate

from ftlens.core.curve_findings import levels
from ftlens.core.curves import diagnose
from ftlens.core.curves_json import diagnosis_to_dict
from ftlens.core.run import Series, TrainingRun
from ftlens.core.smoothing import ema, smooth, trend, zero_phase
from ftlens.io.training_logs import read_run

SEEDS = range(35)  # per kind; overfitting gets OVERFIT_SEEDS: 310 curves in all
OVERFIT_SEEDS = range(100)


@pytest.fixture(scope="module")
def verdicts() -> list[tuple[object, set[str], object]]:
    out = []
    for kind in KINDS:
        for seed in OVERFIT_SEEDS if kind == "overfit" else SEEDS:
            run, truth = generate(kind, seed)
            d = diagnose(run)
            out.append((truth, {f.id for f in d.findings}, d))
    return out


def test_overfitting_detection_bars(verdicts: list) -> None:
    counts: Counter[str] = Counter()
    onset_errors = []
    for truth, ids, d in verdicts:
        found, real = "overfitting" in ids, truth.overfit_onset is not None
        counts["tp" if found and real else "fp" if found else "fn" if real else "tn"] += 1
        if found and real:
            n = len(d.run.train_loss)
            onset_errors.append(abs(d.overfit.onset_step - truth.overfit_onset) / n)
    f1 = 2 * counts["tp"] / (2 * counts["tp"] + counts["fp"] + counts["fn"])
    false_rate = counts["fp"] / (counts["fp"] + counts["tn"])
    within = float(np.mean(np.array(onset_errors) <= 0.10))
    print(f"\noverfitting: F1 {f1:.3f}, false positives {false_rate:.1%}, "
          f"onset within 10% of the run {within:.1%} ({dict(counts)})")
    assert len(verdicts) >= 200
    assert f1 >= 0.9
    assert false_rate <= 0.05
    assert within >= 0.9


def test_noisy_but_decreasing_is_never_stuck(verdicts: list) -> None:
    noisy = [ids for truth, ids, _ in verdicts if truth.kind == "noisy_decreasing"]
    assert noisy
    assert not any("loss_stuck" in ids for ids in noisy)
    assert sum("loss_noisy" in ids for ids in noisy) >= 0.9 * len(noisy)
    assert sum("loss_decreasing" in ids for ids in noisy) >= 0.9 * len(noisy)


@pytest.mark.parametrize(("kind", "finding", "share"), [
    ("clean", "loss_decreasing", 1.0),
    ("stuck", "loss_stuck", 1.0),
    ("noise", "loss_stuck", 1.0),
    ("noise", "loss_noisy", 1.0),
    ("diverging", "loss_diverging", 1.0),
    ("memorising", "memorization", 0.9),
    ("memorising_spiky", "memorization", 1.0),
    ("noisy_short", "loss_decreasing", 0.85),
])
def test_each_kind_gets_its_finding(verdicts: list, kind: str, finding: str,
                                    share: float) -> None:
    runs = [ids for truth, ids, _ in verdicts if truth.kind == kind]
    assert sum(finding in ids for ids in runs) >= share * len(runs)


@pytest.mark.parametrize("kind", ["clean", "noisy_decreasing", "memorising",
                                  "memorising_spiky"])
def test_learning_runs_are_not_called_stuck_or_diverging(verdicts: list, kind: str) -> None:
    for truth, ids, _ in verdicts:
        if truth.kind == kind:
            assert not ids & {"loss_stuck", "loss_diverging"}, (truth, ids)


def test_a_likely_trend_with_a_large_fall_is_never_stuck(verdicts: list) -> None:
    """Mann–Kendall p < 0.05 and medians 30 % lower: learning (or, under p 0.01–0.05 with a
    small fall, 'falls only'); never 'nothing is being learned'."""
    judged = 0
    for _, ids, d in verdicts:
        lv = levels(d.train.raw)
        if d.train_trend.p_value < 0.05 and d.train_trend.tau < 0 and lv.drop >= 0.3:
            judged += 1
            assert ids & {"loss_decreasing", "loss_diverging"}, d.findings
            assert "loss_stuck" not in ids, d.findings
        assert all("nothing is being learned" not in f.evidence or lv.drop < 0.3
                   for f in d.findings)
    assert judged >= 200


def test_short_noisy_runs_never_diverge(verdicts: list) -> None:
    for truth, ids, _ in verdicts:
        if truth.kind == "noisy_short":
            assert "loss_diverging" not in ids


def test_verdicts_follow_the_findings(verdicts: list) -> None:
    for truth, ids, d in verdicts:
        if ids & {"loss_stuck", "loss_diverging", "overfitting"}:
            assert d.verdict == "not_ready"
        if truth.kind == "clean":
            assert d.verdict == "ready"


# --- smoothing and trend ----------------------------------------------------------------


@pytest.mark.parametrize(("n", "span"), [(1, 5), (50, 7), (5000, 500), (300, 1)])
def test_ema_equals_the_recursion(n: int, span: int) -> None:
    x = np.random.default_rng(n).normal(size=n)
    beta = 1 - 2 / (span + 1)
    state = weight = 0.0
    expected = []
    for v in x:
        state = beta * state + (1 - beta) * v
        weight = beta * weight + (1 - beta)
        expected.append(state / weight)
    got = ema(x, span)
    assert np.allclose(got, expected if span > 1 else x)


def test_zero_phase_smoothing_does_not_move_a_minimum() -> None:
    t = np.arange(400)
    valley = (t - 250.0) ** 2 / 1e4 + np.random.default_rng(0).normal(0, 0.05, len(t))
    s = zero_phase(valley, span=20)
    assert abs(int(np.argmin(s)) - 250) <= 15
    lagged = ema(valley, 20)
    assert int(np.argmin(lagged)) > int(np.argmin(s))  # a one-sided EMA lags


def test_noise_estimate_is_robust_to_outliers() -> None:
    rng = np.random.default_rng(1)
    x = 1 + rng.normal(0, 0.1, 2000)
    x[::100] = 50.0  # spikes
    s = smooth(np.arange(len(x)), x)
    assert 0.07 < s.noise < 0.14


@pytest.mark.parametrize(("slope", "decreasing", "increasing"), [
    (-0.01, True, False), (0.0, False, False), (0.01, False, True)])
def test_trend(slope: float, decreasing: bool, increasing: bool) -> None:
    t = np.arange(2000)
    y = 5 + slope * t + np.random.default_rng(2).normal(0, 0.5, len(t))
    tr = trend(t, y)
    assert tr.decreasing is decreasing and tr.increasing is increasing
    if slope:
        assert tr.slope == pytest.approx(slope, rel=0.1)


# --- unit cases -----------------------------------------------------------------------


def _run(train: list[float], valid: list[float] | None = None, **kw: object) -> TrainingRun:
    steps = np.arange(1, len(train) + 1)
    v = None if valid is None else Series(np.arange(1, len(valid) + 1) * (len(train) //
                                                                         len(valid)),
                                          np.array(valid, dtype=float))
    return TrainingRun(Series(steps, np.array(train, dtype=float)), v, **kw)  # type: ignore


def test_too_few_steps_is_inconclusive() -> None:
    d = diagnose(_run([1.0, 0.9]))
    assert [f.id for f in d.findings] == ["too_few_steps"]
    assert d.verdict == "inconclusive"


def test_a_spike_that_comes_back_down_is_noise_not_divergence() -> None:
    # the quick demo's shape: the loss falls to ~0, a batch of the rare class sends it back
    # up to the starting level for a step, and it settles again
    steps = np.arange(1, 41)
    loss = np.r_[[5.5, 4.2, 1.0, 0.02, 0.05, 0.03, 0.01, 0.005, 0.006, 0.02],
                 [0.05, 0.1, 0.3, 0.8, 6.5, 0.4, 1.2, 0.3, 0.9, 0.2],
                 np.tile([0.05, 0.3, 0.02, 0.01, 0.6], 4)]
    ids = {f.id for f in diagnose(TrainingRun(train_loss=Series(steps, loss))).findings}
    assert "loss_diverging" not in ids
    # the same run, but the loss stays up after the spike: diverging, from where it rose
    risen = np.r_[loss[:14], np.full(26, 4.5)]
    d = diagnose(TrainingRun(train_loss=Series(steps, risen)))
    div = next(f for f in d.findings if f.id == "loss_diverging")
    assert 10 <= div.details["step"] <= 16


def test_nan_loss_is_divergence_at_its_step() -> None:
    train = list(np.linspace(2, 1, 50)) + [float("nan")] * 5
    d = diagnose(_run(train))
    div = next(f for f in d.findings if f.id == "loss_diverging")
    assert "step 51" in div.title and "NaN" in div.evidence
    assert d.verdict == "not_ready"


@pytest.mark.parametrize("huge", [1e308, -1e308, 1e200])
@pytest.mark.parametrize("where", ["train", "valid"])
def test_an_astronomical_loss_is_divergence_not_a_crash(huge: float, where: str) -> None:
    """A finite loss so large that smoothing it overflows (a value read from a log as it is)
    ends the curve like NaN or inf; in the validation loss it crashed diagnose (IndexError:
    the noise band was NaN, so no step was within it of the minimum)."""
    train = [huge if where == "train" and i == 30 else 2 - i / 60 for i in range(60)]
    valid = [huge if where == "valid" and i == 6 else 2.1 - i / 12 for i in range(12)]
    run = TrainingRun(train_loss=Series(np.arange(1, 61), np.array(train)),
                      valid_loss=Series(np.arange(5, 61, 5), np.array(valid)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning on the user's terminal either
        d = diagnose(run)
    found = {f.id: f for f in d.findings}
    if where == "train":
        assert found["loss_diverging"].details == {"step": 31, "nonfinite": True}
        assert "1e100" in found["loss_diverging"].evidence
    else:
        assert d.best_step is not None and d.best_step <= 30  # the curve up to the huge value
    json.dumps(diagnosis_to_dict(d), allow_nan=False)


def test_no_validation_is_said() -> None:
    d = diagnose(_run(list(np.linspace(2, 0.5, 100))))
    assert "no_validation" in {f.id for f in d.findings}
    assert d.valid is None and d.best_step is None


def test_best_checkpoint_prefers_full_validation_and_known_checkpoints() -> None:
    run, _ = generate("overfit", 3)
    steps = run.valid_loss.steps
    full = Series(steps[::5], run.valid_loss.values[::5])
    best_full = int(full.steps[np.argmin(full.values)])
    d = diagnose(dataclasses.replace(run, full_valid_loss=full))
    assert d.best_from == "full validation" and d.best_step == best_full
    allowed = (int(steps[-3]), int(steps[-2]), int(steps[-1]))  # OpenAI keeps the last 3
    d = diagnose(dataclasses.replace(run, checkpoint_steps=allowed))
    assert d.best_step in allowed
    assert f"step {d.best_step}" in next(f.title for f in d.findings
                                         if f.id == "best_checkpoint")


def test_epoch_boundaries() -> None:
    d = diagnose(_run(list(np.linspace(2, 0.5, 100)), steps_per_epoch=30))
    assert d.epoch_steps == (30, 60, 90)


def test_overfitting_evidence_names_onset_and_gap() -> None:
    run, _ = generate("overfit", 7)
    d = diagnose(run)
    f = next(f for f in d.findings if f.id == "overfitting")
    assert str(d.overfit.onset_step) in f.title
    assert "gap" in f.evidence and "checkpoint" in f.advice
    assert f.details["onset_step"] == d.overfit.onset_step


def test_json_has_no_nan() -> None:
    import json

    run, _ = generate("diverging", 0)
    data = diagnosis_to_dict(diagnose(run))
    text = json.dumps(data, allow_nan=False)  # raises on NaN/inf
    assert '"verdict": "not_ready"' in text


def test_openai_runs_keep_the_last_three_epochs_as_checkpoints() -> None:
    run, _ = generate("overfit", 4)
    n = int(run.train_loss.steps[-1])
    per_epoch = n // 5
    d = diagnose(dataclasses.replace(run, source="openai-csv", steps_per_epoch=per_epoch))
    ends = [*range(per_epoch, n, per_epoch), n][-3:]
    assert d.run.checkpoint_steps == tuple(ends)
    assert d.best_step is None or d.best_step in ends
    other = diagnose(dataclasses.replace(run, source="trainer-state", steps_per_epoch=per_epoch))
    assert other.run.checkpoint_steps is None

# doubles of every size: the 32-bit ones never reached the sizes where smoothing overflowed
VALUES = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=32),
                   st.floats(allow_nan=True, allow_infinity=True),
                   st.sampled_from([1e308, -1e308, 1e200, 5e-324]), st.floats(-10, 10))


@settings(max_examples=200, deadline=None)
@given(train=st.lists(VALUES, min_size=1, max_size=80),
       valid=st.one_of(st.none(), st.lists(VALUES, min_size=1, max_size=20)),
       accuracy=st.booleans())
def test_diagnose_never_raises_and_always_explains(train: list[float],
                                                   valid: list[float] | None,
                                                   accuracy: bool) -> None:
    steps = np.arange(1, len(train) + 1)
    run = TrainingRun(
        train_loss=Series(steps, np.array(train)),
        valid_loss=None if valid is None else Series(np.arange(1, len(valid) + 1) * 3,
                                                     np.array(valid)),
        train_accuracy=Series(steps, np.clip(np.nan_to_num(np.array(train)), 0, 1))
        if accuracy else None)
    d = diagnose(run)
    assert d.findings and d.verdict in ("ready", "not_ready", "inconclusive")
    for f in d.findings:
        assert f.title and f.evidence


# --- real-shaped runs (fixtures written by us, shaped like OpenAI result files) ------------
FIXTURES = Path(__file__).parents[1] / "fixtures" / "curves"


def test_a_run_at_zero_loss_with_a_few_spikes_is_memorising() -> None:
    """Training loss 0.0 on most steps after step 40, eight spikes up to 1.48: the smoothed
    end (~0.12) is pulled up by them, the median of the last tenth is 0."""
    d = diagnose(read_run(FIXTURES / "openai_memorised.csv"))
    found = {f.id: f for f in d.findings}
    assert "memorization" in found and "loss_stuck" not in found
    assert found["memorization"].details["end_loss"] == 0.0
    assert "median of the last 12 steps" in found["memorization"].evidence
    assert d.verdict == "inconclusive"  # the curves alone cannot vouch for it


def test_a_noisy_run_whose_loss_fell_61_percent_is_learning() -> None:
    """Batch size 1, 64 steps, Mann–Kendall p = 0.038, medians 61 % lower: learning, noisy,
    never 'nothing is being learned'."""
    d = diagnose(read_run(FIXTURES / "openai_noisy_falling.csv"))
    found = {f.id: f for f in d.findings}
    assert "loss_stuck" not in found and "loss_decreasing" in found, found
    assert "loss_noisy" in found
    assert "61% lower" in found["loss_decreasing"].evidence
    assert all("nothing is being learned" not in f.evidence for f in d.findings)


@pytest.mark.parametrize("last", [0.0, 9.0])
def test_the_end_level_is_not_pulled_by_the_last_point(last: float) -> None:
    rng = np.random.default_rng(3)
    y = np.abs(2 * np.exp(-np.arange(200) / 40) + 0.3 + rng.normal(0, 0.02, 200))
    y[-1] = last
    d = diagnose(TrainingRun(train_loss=Series(np.arange(1, 201), y), source="synthetic"))
    evidence = next(f.evidence for f in d.findings if f.id == "loss_decreasing")
    assert "→ 0.3" in evidence, evidence


def test_a_small_but_significant_fall_is_not_called_nothing_learned() -> None:
    t = np.arange(1, 401)
    y = 2.0 - 0.1 * t / 400 + np.random.default_rng(5).normal(0, 0.01, 400)  # ~5 % lower
    d = diagnose(TrainingRun(train_loss=Series(t, y), source="synthetic"))
    stuck = next(f for f in d.findings if f.id == "loss_stuck")
    assert stuck.title.startswith("training loss falls only ") and stuck.details["drop"] < 0.1
    assert "too little is being learned" in stuck.evidence
