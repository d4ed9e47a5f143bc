"""``ftlens export``: a fine-tuned model (or checkpoint) out of the service's home, as a PEFT
adapter or a merged model that plain transformers loads to the logits ``ftlens serve`` uses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from openai import OpenAI
from tests.support.jobs import finish_job
from tests.support.service import KEY, Service

from ftlens.cli import cli


@pytest.fixture(scope="module")
def tuned(service: Service) -> Any:
    client = OpenAI(base_url=service.url, api_key=KEY, max_retries=0, timeout=120)
    job = finish_job(client, n_epochs=2, batch_size=4)
    assert job.status == "succeeded", job.error
    return job


def _export(service: Service, *args: str) -> Any:
    return CliRunner().invoke(cli, ["export", *args, "--home", str(service.home)])


def _logits(model: Any, tok: Any) -> Any:
    import torch

    prompt = tok.apply_chat_template([{"role": "user", "content": "free prize now"}],
                                     tokenize=False, add_generation_prompt=True)
    ids = tok(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        return model(ids).logits


def test_a_merged_export_loads_in_plain_transformers_with_the_served_logits(
        service: Service, tuned: Any, tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ftlens.server.catalog import Catalog
    from ftlens.server.inference import ModelPool
    from ftlens.server.store import Store
    from ftlens.train.registry import Registry

    out = tmp_path / "merged"
    result = _export(service, tuned.fine_tuned_model, "--out", str(out), "--merged", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["kind"] == "merged"
    assert (out / "model.safetensors").is_file() and not (out / "adapter_config.json").exists()
    plain = AutoModelForCausalLM.from_pretrained(out)  # no ftlens involved
    tok = AutoTokenizer.from_pretrained(out)
    assert tok.chat_template
    served, served_tok = ModelPool(Catalog(Store(service.home), Registry(service.home))).get(
        tuned.fine_tuned_model)
    assert torch.allclose(_logits(plain.eval(), tok), _logits(served, served_tok), atol=1e-5)


def test_an_adapter_export_is_a_peft_directory(service: Service, tuned: Any,
                                               tmp_path: Path) -> None:
    out = tmp_path / "adapter"
    assert _export(service, tuned.fine_tuned_model, "--out", str(out)).exit_code == 0
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and (out / "adapter_model.safetensors").is_file()
    assert config["base_model_name_or_path"] == "tiny-random-llama"
    assert (out / "tokenizer.json").is_file()
    checkpoint = f"{tuned.fine_tuned_model}:ckpt-step-3"
    assert _export(service, checkpoint, "--out", str(tmp_path / "ckpt")).exit_code == 0


def test_what_cannot_be_exported_says_why(service: Service, tuned: Any, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    taken = tmp_path / "taken"
    taken.mkdir()
    monkeypatch.delenv("LLAMA_CPP_DIR", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    cases = [(["ft:nobody", "--out", str(tmp_path / "x")], "no fine-tuned model"),
             ([tuned.fine_tuned_model, "--out", str(taken)], "exists already"),
             ([tuned.fine_tuned_model, "--out", str(tmp_path / "g"), "--gguf"],
              "needs llama.cpp's converter")]
    for args, message in cases:
        result = _export(service, *args)
        assert result.exit_code != 0 and message in str(result.exception), args
    assert not (tmp_path / "g").exists() and not list(tmp_path.glob(".*partial"))
