"""The training entry point runs unchanged under ``accelerate launch``: one CPU process, and two
(DDP over gloo) giving the same losses, since every step's loss is normalised over the whole
batch whichever process computed which share."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.support.toy_chat import TOY_PREFERENCES, write_jsonl

from ftlens.train.config import TrainConfig
from ftlens.train.hyperparams import Hyperparameters


def _launch(toy_files: tuple[Path, Path], out: Path, processes: int, home: Path,
            objective: str = "supervised") -> list[dict]:
    train_file, valid_file = toy_files
    job = out.with_suffix(".json")
    job.write_text(TrainConfig(
        model="tiny-random-llama", training_file=str(train_file),
        validation_file=str(valid_file), out_dir=str(out), objective=objective,
        hyperparameters=Hyperparameters(n_epochs=1, batch_size=4,
                                        learning_rate_multiplier=10.0),
        eval_every=1).to_json())
    accelerate = Path(sys.executable).with_name("accelerate")
    env = {**os.environ, "FTLENS_HOME": str(home), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([str(accelerate), "launch", "--num_processes", str(processes),
                           "--cpu", "-m", "ftlens.train", str(job)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert '"type": "metrics"' in proc.stdout
    with (out / "results.csv").open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_accelerate_launch_one_and_two_cpu_processes(toy_files: tuple[Path, Path],
                                                      tmp_path: Path, ftlens_home: Path) -> None:
    one = _launch(toy_files, tmp_path / "one", 1, ftlens_home)
    assert [r["step"] for r in one] == ["1", "2", "3"]
    assert (tmp_path / "one" / "model" / "adapter_model.safetensors").exists()
    two = _launch(toy_files, tmp_path / "two", 2, ftlens_home)
    for a, b in zip(one, two, strict=True):
        for key in ("train_loss", "valid_loss"):
            assert float(a[key]) == pytest.approx(float(b[key]), rel=1e-4)


def test_dpo_under_two_cpu_processes_gives_the_same_losses(tmp_path: Path,
                                                           ftlens_home: Path) -> None:
    pairs = write_jsonl(tmp_path / "pairs.jsonl", TOY_PREFERENCES)
    one = _launch((pairs, pairs), tmp_path / "one", 1, ftlens_home, "dpo")
    two = _launch((pairs, pairs), tmp_path / "two", 2, ftlens_home, "dpo")
    assert float(one[-1]["train_reward_margin"]) != 0.0  # the policy left the reference
    for a, b in zip(one, two, strict=True):
        for key in ("train_loss", "train_reward_margin", "valid_loss"):
            assert float(a[key]) == pytest.approx(float(b[key]), rel=1e-4, abs=1e-6)


def test_entry_point_reports_bad_config_without_a_traceback(tmp_path: Path) -> None:
    job = tmp_path / "job.json"
    job.write_text("{not json")
    proc = subprocess.run([sys.executable, "-m", "ftlens.train", str(job)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "error: cannot read training config" in proc.stderr
    assert "Traceback" not in proc.stderr
