"""``export_model``: take a fine-tuned model (or one of its checkpoints) out of an ftlens home —
as a PEFT adapter directory (PEFT and vLLM load it), as a merged Hugging Face model
(safetensors, tokenizer, chat template: plain transformers loads it offline), or as a GGUF
through llama.cpp's converter when it is installed. OpenAI never hands over the weights."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ftlens.errors import ConfigError

CONVERTER = "convert_hf_to_gguf.py"
LLAMA_CPP_ENV = "LLAMA_CPP_DIR"
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


@dataclass(frozen=True)
class Exported:
    out: Path
    kind: str  # "adapter", "merged" or "gguf"
    base: str  # what the adapter applies to


def export_model(name: str, out: Path, *, home: Path, merged: bool = False,
                 gguf: bool = False) -> Exported:
    """Write ``name`` into ``out``, which must not exist yet (nothing is overwritten, and a
    failed export leaves nothing behind)."""
    from ftlens.server.store import Store
    from ftlens.train.artifacts import read_meta

    if out.exists():
        raise ConfigError(f"{out} exists already", hint="export into a new folder")
    folder = Store(home).find_model(name)
    if folder is None:
        raise ConfigError(f"no fine-tuned model or checkpoint {name!r} in {home}",
                          hint="see `GET /v1/models` (or pass --home, the service's home)")
    converter = _converter() if gguf else None
    meta = read_meta(folder)
    partial = out.with_name(f".{out.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        if merged or gguf or meta.get("method") == "full":
            kind, base = "merged", _merged(folder, partial)
        else:
            kind, base = "adapter", _adapter(folder, partial, meta)
        if converter is not None:
            _gguf(converter, partial)
            kind = "gguf"
        partial.rename(out)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return Exported(out, kind, base)


def _base_location(base_model: str) -> str:
    """Where the adapter's base model loads from outside ftlens: the operator's directory or
    hub id, the fp32 conversion of a GGUF, or (the random test model) only its name."""
    from ftlens.train import models

    source = models.resolve(base_model)
    if source.kind == "gguf":
        return str(models.converted_dir(source))
    # a hub id as such (its path is this machine's cache), the tiny model by its name
    return source.name if source.kind in ("hub", "tiny") else source.path


def _adapter(folder: Path, out: Path, meta: dict[str, object]) -> str:
    from ftlens.train import models

    out.mkdir(parents=True)
    for file in ADAPTER_FILES:
        shutil.copy2(folder / file, out / file)
    base = _base_location(str(meta["base_model"]))
    config = json.loads((out / "adapter_config.json").read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = base
    (out / "adapter_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    models.load_tokenizer(models.resolve(str(meta["base_model"]))).save_pretrained(out)
    shutil.copy2(folder / "ftlens.json", out / "ftlens.json")
    return base


def _merged(folder: Path, out: Path) -> str:
    from ftlens.train.artifacts import load_tuned

    model, tok = load_tuned(folder)
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    shutil.copy2(folder / "ftlens.json", out / "ftlens.json")
    return "merged into the weights"


def _converter() -> Path:
    """llama.cpp's HF-to-GGUF converter: in ``$LLAMA_CPP_DIR`` or on the PATH."""
    root = os.environ.get(LLAMA_CPP_ENV)
    candidates = [Path(root) / CONVERTER] if root else []
    on_path = shutil.which(CONVERTER)
    if on_path:
        candidates.append(Path(on_path))
    for path in candidates:
        if path.is_file():
            return path
    raise ConfigError("--gguf needs llama.cpp's converter (convert_hf_to_gguf.py), which is "
                      "not installed here", hint="git clone https://github.com/ggml-org/"
                      "llama.cpp, pip install -r llama.cpp/requirements.txt, then set "
                      f"{LLAMA_CPP_ENV}=path/to/llama.cpp (or export --merged and convert "
                      "it yourself)")


def _gguf(converter: Path, merged: Path) -> None:
    target = merged / "model.gguf"
    done = subprocess.run([sys.executable, str(converter), str(merged), "--outfile",
                           str(target)], capture_output=True, text=True, check=False)
    if done.returncode != 0 or not target.is_file():
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise ConfigError("llama.cpp's converter failed: " + " / ".join(tail),
                          hint="check the llama.cpp checkout and its requirements")
