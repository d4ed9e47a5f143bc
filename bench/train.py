"""Benchmark: the local fine-tuning engine on SmolLM2-135M-Instruct (issue 5).

1. Speed: training tokens/s of `ftlens.train` against a plain Hugging Face `Trainer` on the same
   model, data, LoRA settings, batch size and learning rate, measured in the same run (loading
   excluded from both; tokens = real, unpadded tokens). Target: >= 1.2x.
2. Label scoring: spam/ham probabilities for the test set with `score_labels` against scoring
   each label by `generate` (one forced-decoding `generate` call per example and label, summing
   the raw log-probabilities of the label's tokens and the end-of-turn token), same run. Target:
   >= 3x faster. The baseline and the sequence mode must agree.
3. DPO speed: tokens/s of a `ftlens.train` DPO job (LoRA, the LoRA-disabled model as the
   reference; its one reference pass counted in its time) against TRL's `DPOTrainer` on the same
   model, preference pairs (built from examples/spam: the true label preferred over the other),
   token ids, LoRA settings, batch size, beta and learning rate, same run (tokens = the real
   tokens of both sequences of every pair). Target: >= 1.2x.
4. Quality: the default recipe (every hyperparameter "auto") on examples/spam: validation loss
   of the base model vs the tuned one (target: at least halved) and test accuracy of the base vs
   the tuned model from label scoring (target: well above the base model's).

5. Task-metric cost (issue 18): the tiny random model on 200 validation rows of examples/spam
   (trained on the other 120),
   trained with and without task metrics (same data, seed and settings), three times each;
   the median time of a step that validates (sampled rows between epoch ends, every row at an
   epoch's end) with task metrics over the same without. Target: at most 2x.

    python bench/train.py [--speed-examples 64] [--dpo-pairs 48] [--skip-quality]
    python bench/train.py --only-dpo            # the DPO row alone
    python bench/train.py --only-task-metrics   # the task-metric cost alone
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ftlens.io.chat_dataset import read_conversations
from ftlens.train import models
from ftlens.train.config import Event, TaskMetricsSettings, TrainConfig
from ftlens.train.data import collate, encode_all, micro_batches
from ftlens.train.engine import train
from ftlens.train.hyperparams import Hyperparameters
from ftlens.train.infer import prompt_ids
from ftlens.train.loss import AnswerLoss
from ftlens.train.masking import IGNORE
from ftlens.train.scoring import score_labels

SPAM = Path(__file__).resolve().parents[1] / "examples" / "spam"
MODEL = models.SMOLLM2
LABELS = ["spam", "ham"]


def trainer_baseline(train_file: Path, batch_size: int, lr: float, out: Path) -> float:
    """Tokens/s of a plain transformers Trainer with the same LoRA, batch and learning rate."""
    from peft import LoraConfig, get_peft_model
    from transformers import Trainer, TrainingArguments

    model, tok = models.load_model(models.resolve(MODEL))
    # the GGUF weights are dequantised to fp32 on load, but transformers still flags the model
    # as GGUF-quantised and Trainer refuses it; it is an ordinary fp32 model, so unflag it
    model.hf_quantizer, model.is_quantized = None, False
    examples = encode_all(tok, read_conversations(train_file), max_length=2048,
                          path=str(train_file))
    rows = [{"input_ids": ex.input_ids, "labels": ex.labels} for ex in examples]
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id

    def collator(batch: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        width = max(len(r["input_ids"]) for r in batch)
        ids = [r["input_ids"] + [pad] * (width - len(r["input_ids"])) for r in batch]
        labels = [r["labels"] + [IGNORE] * (width - len(r["labels"])) for r in batch]
        mask = [[1] * len(r["input_ids"]) + [0] * (width - len(r["input_ids"])) for r in batch]
        return {"input_ids": torch.tensor(ids), "labels": torch.tensor(labels),
                "attention_mask": torch.tensor(mask)}

    lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear",
                      task_type="CAUSAL_LM")
    args = TrainingArguments(output_dir=str(out), per_device_train_batch_size=batch_size,
                             num_train_epochs=1, learning_rate=lr, lr_scheduler_type="linear",
                             warmup_steps=int(0.1 * -(-len(rows) // batch_size)),
                             weight_decay=0.0, save_strategy="no", remove_unused_columns=False,
                             report_to=[], use_cpu=True, logging_steps=1000,
                             disable_tqdm=True, seed=0)
    trainer = Trainer(model=get_peft_model(model, lora), args=args, train_dataset=rows,
                      data_collator=collator)
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    return sum(len(r["input_ids"]) for r in rows) / seconds


def speed(n: int, batch_size: int, work: Path) -> dict[str, float]:
    subset = work / "speed.jsonl"
    subset.write_text("".join((SPAM / "train.jsonl").read_text().splitlines(True)[:n]))
    config = TrainConfig(model=MODEL, training_file=str(subset), out_dir=str(work / "speed"),
                         hyperparameters=Hyperparameters(n_epochs=1, batch_size=batch_size))
    ours = train(config).tokens_per_second
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    base = trainer_baseline(subset, batch_size, 1e-3, work / "trainer")
    return {"ftlens_tokens_per_s": ours, "trainer_tokens_per_s": base, "ratio": ours / base}


def dpo_pairs(n: int, path: Path) -> Path:
    """``n`` preference pairs from examples/spam: the true label preferred over the other."""
    rows = []
    for line in (SPAM / "train.jsonl").read_text(encoding="utf-8").splitlines()[:n]:
        messages = json.loads(line)["messages"]
        truth = messages[-1]["content"]
        rows.append({"input": {"messages": messages[:-1]},
                     "preferred_output": [{"role": "assistant", "content": truth}],
                     "non_preferred_output": [{"role": "assistant", "content":
                                               "ham" if truth == "spam" else "spam"}]})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def trl_dpo_baseline(pairs_file: Path, batch_size: int, lr: float, beta: float,
                     out: Path, precompute: bool = False) -> float:
    """Tokens/s of TRL's DPOTrainer on the same pairs, tokens, LoRA, batch, beta and rate
    (``precompute``: with ``precompute_ref_log_probs``, its reference pass timed too)."""
    from datasets import Dataset
    from peft import LoraConfig
    from trl import DPOConfig, DPOTrainer

    from ftlens.io.chat_dataset import read_preferences
    from ftlens.train.preference import encode_pairs

    model, tok = models.load_model(models.resolve(MODEL))
    model.hf_quantizer, model.is_quantized = None, False  # see trainer_baseline
    pairs = encode_pairs(tok, read_preferences(pairs_file), max_length=2048,
                         path=str(pairs_file))
    rows, tokens = [], 0
    for pair in pairs:
        row: dict[str, list[int]] = {}
        for key, ex in (("chosen_ids", pair.chosen), ("rejected_ids", pair.rejected)):
            trained = [i for i, label in enumerate(ex.labels) if label != IGNORE]
            row["prompt_ids"] = ex.input_ids[:trained[0]]
            row[key] = ex.input_ids[trained[0]:trained[-1] + 1]
        rows.append(row)
        tokens += len(pair.chosen) + len(pair.rejected)

    class Tokenized(DPOTrainer):  # our token ids as they are, as in tests/train/test_dpo.py
        def _prepare_dataset(self, dataset, *args, **kwargs):  # type: ignore[no-untyped-def]
            return dataset

    args = DPOConfig(output_dir=str(out), per_device_train_batch_size=batch_size,
                     num_train_epochs=1, learning_rate=lr, lr_scheduler_type="linear",
                     warmup_steps=int(0.1 * -(-len(rows) // batch_size)), weight_decay=0.0,
                     beta=beta, bf16=False, gradient_checkpointing=False, save_strategy="no",
                     report_to=[], use_cpu=True, logging_steps=1000, disable_tqdm=True,
                     seed=0, max_length=None, precompute_ref_log_probs=precompute)
    lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear",
                      task_type="CAUSAL_LM")
    built = time.perf_counter()
    trainer = Tokenized(model=model, args=args, processing_class=tok,
                        train_dataset=Dataset.from_list(rows), peft_config=lora)
    started = time.perf_counter()
    trainer.train()
    # a precomputed reference pass runs in __init__: it is counted, as ftlens counts its own
    return tokens / (time.perf_counter() - (built if precompute else started))


def dpo_speed(n: int, batch_size: int, work: Path) -> dict[str, float]:
    pairs = dpo_pairs(n, work / "pairs.jsonl")
    hp = Hyperparameters(n_epochs=1, batch_size=batch_size, beta=0.1)
    config = TrainConfig(model=MODEL, training_file=str(pairs), out_dir=str(work / "dpo"),
                         objective="dpo", hyperparameters=hp)
    ours = train(config).tokens_per_second
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    lr = hp.resolve(n).learning_rate("lora")
    base = trl_dpo_baseline(pairs, batch_size, lr, 0.1, work / "trl")
    pre = trl_dpo_baseline(pairs, batch_size, lr, 0.1, work / "trl-pre", precompute=True)
    return {"ftlens_dpo_tokens_per_s": ours, "trl_dpo_tokens_per_s": base, "ratio": ours / base,
            "trl_precomputed_ref_tokens_per_s": pre, "ratio_precomputed": ours / pre}


def by_generate(model: object, tok: object, prompts: list[list[dict[str, str]]]) -> np.ndarray:
    """One forced-decoding generate() per example and label (its tokens, then the end of
    turn); the raw log-probabilities summed."""
    out = np.zeros((len(prompts), len(LABELS)))
    for i, prompt in enumerate(prompts):
        ids = torch.tensor([prompt_ids(tok, prompt)])
        for j, label in enumerate(LABELS):
            wanted = tok(label + tok.eos_token, add_special_tokens=False)["input_ids"]

            def force(_batch: int, sofar: torch.Tensor, w: list[int] = wanted,
                      start: int = ids.shape[1]) -> list[int]:
                return [w[min(len(sofar) - start, len(w) - 1)]]

            gen = model.generate(
                ids, attention_mask=torch.ones_like(ids), max_new_tokens=len(wanted),
                do_sample=False, prefix_allowed_tokens_fn=force, output_logits=True,
                return_dict_in_generate=True, pad_token_id=tok.eos_token_id)
            out[i, j] = sum(float(torch.log_softmax(step[0].float(), -1)[t])
                            for step, t in zip(gen.logits, wanted, strict=True))
    out = np.exp(out - out.max(axis=1, keepdims=True))
    return out / out.sum(axis=1, keepdims=True)


def scoring(model: object, tok: object, n: int) -> dict[str, float]:
    rows = [c.messages for c in read_conversations(SPAM / "test.jsonl")][:n]
    prompts = [m[:-1] for m in rows]
    timings = {}
    for mode in ("first_token", "sequence"):
        started = time.perf_counter()
        score_labels(model, tok, prompts, LABELS, mode=mode)
        timings[mode] = time.perf_counter() - started
    started = time.perf_counter()
    baseline = by_generate(model, tok, prompts)
    generate_s = time.perf_counter() - started
    # the generate baseline sums the label's tokens and the end of turn, as sequence mode does:
    # the two must agree
    sequence = score_labels(model, tok, prompts, LABELS, mode="sequence").probs
    agree = float(np.abs(sequence - baseline).max())
    return {"examples": n, "first_token_s": timings["first_token"],
            "sequence_s": timings["sequence"], "generate_s": generate_s,
            "speedup_first_token": generate_s / timings["first_token"],
            "speedup_sequence": generate_s / timings["sequence"], "max_abs_diff": agree}


def valid_loss(model: object, tok: object) -> float:
    examples = encode_all(tok, read_conversations(SPAM / "valid.jsonl"), max_length=2048,
                          path="valid")
    net = AnswerLoss(model).eval()
    total = torch.zeros(3)
    with torch.no_grad():
        for part in micro_batches(range(len(examples)), examples, 4096):
            total += net(**collate([examples[i] for i in part], tok.eos_token_id))
    return float(total[0] / total[2])


def accuracy(model: object, tok: object) -> float:
    rows = [c.messages for c in read_conversations(SPAM / "test.jsonl")]
    probs = score_labels(model, tok, [m[:-1] for m in rows], LABELS).probs
    truth = np.array([LABELS.index(m[-1]["content"]) for m in rows])
    return float((probs.argmax(axis=1) == truth).mean())


def quality(work: Path) -> dict[str, float]:
    base, tok = models.load_model(models.resolve(MODEL))
    before = {"valid_loss": valid_loss(base, tok), "accuracy": accuracy(base, tok)}
    config = TrainConfig(model=MODEL, training_file=str(SPAM / "train.jsonl"),
                         validation_file=str(SPAM / "valid.jsonl"), out_dir=str(work / "q"))
    result = train(config)
    after = {"valid_loss": valid_loss(result.model, tok),
             "accuracy": accuracy(result.model, tok)}
    return {"base_valid_loss": before["valid_loss"], "tuned_valid_loss": after["valid_loss"],
            "base_accuracy": before["accuracy"], "tuned_accuracy": after["accuracy"],
            "wall_s": result.seconds, "train_s": result.train_seconds,
            "tokens_per_s": result.tokens_per_second, "steps": result.steps,
            **{f"hp_{k}": v for k, v in result.hyperparameters.items()}}


def _step_times(config: TrainConfig) -> tuple[list[float], list[float]]:
    """Seconds of each step that validated on sampled rows, and of each epoch-end step (time
    from the previous step's metrics event)."""
    stamps: list[tuple[float, dict[str, object]]] = []

    def on(event: Event) -> None:
        if event.type == "metrics" and event.data is not None:
            stamps.append((time.perf_counter(), event.data))

    train(config, callbacks=[on])
    sampled, full = [], []
    for (t0, _), (t1, data) in itertools.pairwise(stamps):
        if "full_valid_loss" in data:
            full.append(t1 - t0)
        elif "valid_loss" in data:
            sampled.append(t1 - t0)
    return sampled, full


def task_cost(work: Path, runs: int = 3, n_valid: int = 200) -> dict[str, object]:
    lines = (SPAM / "train.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    valid = work / "tm-valid.jsonl"
    valid.write_text("".join(lines[:n_valid]), encoding="utf-8")
    training = work / "tm-train.jsonl"  # the rest of train.jsonl and valid.jsonl: 120 rows
    more = (SPAM / "valid.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    training.write_text("".join(lines[n_valid:] + more), encoding="utf-8")
    ratios: dict[str, list[float]] = {"sampled": [], "epoch_end": []}
    seconds: dict[str, list[float]] = {"sampled_off": [], "sampled_on": [], "epoch_end_off": [],
                                       "epoch_end_on": []}
    for r in range(runs):
        medians = {}
        for on in (False, True):
            config = TrainConfig(
                model="tiny-random-llama", training_file=str(training),
                validation_file=str(valid), out_dir=str(work / f"tm-{r}-{on}"), seed=r,
                hyperparameters=Hyperparameters(n_epochs=2, batch_size=8),
                task_metrics=TaskMetricsSettings() if on else None)
            sampled, full = _step_times(config)
            medians[on] = (float(np.median(sampled)), float(np.median(full)))
            tag = "on" if on else "off"
            seconds[f"sampled_{tag}"].append(medians[on][0])
            seconds[f"epoch_end_{tag}"].append(medians[on][1])
        ratios["sampled"].append(medians[True][0] / medians[False][0])
        ratios["epoch_end"].append(medians[True][1] / medians[False][1])
    return {"runs": runs, "valid_rows": n_valid, "train_rows": len(lines) - n_valid + len(more),
            "batch_size": 8,
            **{f"{k}_ratio_median": float(np.median(v)) for k, v in ratios.items()},
            **{f"{k}_ratios": [round(x, 3) for x in v] for k, v in ratios.items()},
            **{f"{k}_s": [round(x, 4) for x in v] for k, v in seconds.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--speed-examples", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--score-examples", type=int, default=100)
    ap.add_argument("--dpo-pairs", type=int, default=48)
    ap.add_argument("--skip-quality", action="store_true")
    ap.add_argument("--only-dpo", action="store_true")
    ap.add_argument("--only-task-metrics", action="store_true")
    args = ap.parse_args()
    report: dict[str, object] = {"cpu_threads": torch.get_num_threads(),
                                 "python": sys.version.split()[0], "torch": torch.__version__}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        report["task_metrics"] = task_cost(work)
        print(json.dumps(report["task_metrics"], indent=2), flush=True)
        if args.only_task_metrics:
            return
        report["dpo_speed"] = dpo_speed(args.dpo_pairs, args.batch_size, work)
        print(json.dumps(report["dpo_speed"], indent=2), flush=True)
        if args.only_dpo:
            return
        report["speed"] = speed(args.speed_examples, args.batch_size, work)
        print(json.dumps(report["speed"], indent=2), flush=True)
        model, tok = models.load_model(models.resolve(MODEL))
        report["scoring"] = scoring(model, tok, args.score_examples)
        print(json.dumps(report["scoring"], indent=2), flush=True)
        if not args.skip_quality:
            report["quality"] = quality(work)
            print(json.dumps(report["quality"], indent=2), flush=True)


if __name__ == "__main__":
    main()
