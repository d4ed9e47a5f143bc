"""The models an operator brings: registered by name (a model directory, a .gguf file or a
hub id in the local Hugging Face cache), checked when registered, resolved offline, and never
a path a client names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from tests.support.chat_families import FAMILIES, cache_hub_model, save

from ftlens.cli import cli
from ftlens.errors import ConfigError
from ftlens.train import models
from ftlens.train.registry import Registry, parse_session


@pytest.fixture(scope="module")
def qwen_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save(FAMILIES["chatml"], tmp_path_factory.mktemp("qwen") / "tiny-qwen2")


def test_a_registered_directory_resolves_by_name(qwen_dir: Path, tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    found = registry.add("qwen-tiny", str(qwen_dir))
    assert (found.kind, found.source) == ("directory", str(qwen_dir.resolve()))
    assert json.loads((tmp_path / "models.json").read_text())["qwen-tiny"]["kind"] == (
        "directory")
    source = models.resolve("qwen-tiny", registry=Registry(tmp_path), paths=False)
    assert (source.kind, source.path) == ("directory", str(qwen_dir.resolve()))
    model, tok = models.load_model(source)
    assert type(model).__name__ == "Qwen2ForCausalLM" and tok.chat_template
    assert registry.remove("qwen-tiny") and not registry.remove("qwen-tiny")
    with pytest.raises(ConfigError, match="'qwen-tiny' is not known here"):
        models.resolve("qwen-tiny", registry=registry, paths=False)


def test_a_client_never_names_a_path(qwen_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not known here"):
        models.resolve(str(qwen_dir), registry=Registry(tmp_path), paths=False)
    assert models.resolve(str(qwen_dir), registry=Registry(tmp_path)).kind == "directory"


def test_a_hub_id_loads_from_the_local_cache_offline(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError, match="not in the local Hugging Face cache") as err:
        models.resolve("acme/tiny-llama3", registry=Registry(tmp_path))
    assert "hf download acme/tiny-llama3" in err.value.render()
    snapshot = cache_hub_model(FAMILIES["llama3"], tmp_path / "hub", "acme/tiny-llama3")
    source = models.resolve("acme/tiny-llama3", registry=Registry(tmp_path), paths=False)
    assert (source.kind, source.path) == ("hub", str(snapshot))
    model, _ = models.load_model(source)
    assert type(model).__name__ == "LlamaForCausalLM"


def test_what_cannot_be_registered_says_why(qwen_dir: Path, tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    bare = save(FAMILIES["gemma"], tmp_path / "no-template")
    for leftover in ("chat_template.jinja", "chat_template.json"):
        (bare / leftover).unlink(missing_ok=True)
    config = json.loads((bare / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (bare / "tokenizer_config.json").write_text(json.dumps(config))
    (tmp_path / "empty").mkdir()
    cases = [("m", str(bare), "has no chat template"),
             ("m", str(tmp_path / "empty"), "has no config.json"),
             ("m", str(tmp_path / "missing"), "is not a model directory, a .gguf file"),
             ("tiny-random-llama", str(qwen_dir), "cannot name a model"),
             ("ft:x", str(qwen_dir), "cannot name a model"),
             ("a/b", str(qwen_dir), "cannot name a model")]
    for name, source, message in cases:
        with pytest.raises(ConfigError, match=message):
            registry.add(name, source, reserved=(models.TINY, models.SMOLLM2))
    assert registry.all() == []  # nothing half-written
    (tmp_path / "models.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"models\.json is unreadable"):
        registry.all()


def test_serve_models_are_checked_name_equals_path(qwen_dir: Path) -> None:
    assert parse_session((f"q={qwen_dir}",)) == {"q": str(qwen_dir)}
    with pytest.raises(ConfigError, match="is not NAME=PATH"):
        parse_session((str(qwen_dir),))


def test_the_models_command(qwen_dir: Path, tmp_path: Path) -> None:
    home = ["--home", str(tmp_path)]
    runner = CliRunner()
    added = runner.invoke(cli, ["models", "add", "qwen-tiny", str(qwen_dir), *home])
    assert added.exit_code == 0 and "registered qwen-tiny: directory" in added.output
    listed = runner.invoke(cli, ["models", "list", "--json", *home])
    assert json.loads(listed.output) == [{"name": "qwen-tiny", "kind": "directory",
                                          "source": str(qwen_dir.resolve())}]
    assert runner.invoke(cli, ["models", "remove", "qwen-tiny", *home]).exit_code == 0
    missing = runner.invoke(cli, ["models", "remove", "qwen-tiny", *home])
    assert missing.exit_code != 0 and "no model named 'qwen-tiny'" in str(missing.exception)


def test_a_gguf_file_registers_and_shares_the_conversion(tmp_path: Path) -> None:
    """The packaged SmolLM2 GGUF registered under another name: the same file, so the same
    kept fp32 conversion (no second 25 s conversion)."""
    builtin = models.resolve(models.SMOLLM2)
    registry = Registry(tmp_path)
    assert registry.add("smol", builtin.location).kind == "gguf"
    source = models.resolve("smol", registry=registry, paths=False)
    assert (source.kind, source.location) == ("gguf", builtin.location)
    assert models.converted_dir(source) == models.converted_dir(builtin)


def test_a_name_shaped_like_a_hub_id_is_never_read_as_a_path(
        qwen_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A client's "org/name" that happens to exist under the server's working directory is
    looked up in the Hugging Face cache only."""
    import shutil

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    shutil.copytree(qwen_dir, tmp_path / "acme" / "model")
    (tmp_path / "acme" / "x.gguf").write_bytes(b"GGUF")
    for name in ("acme/model", "acme/x.gguf"):
        with pytest.raises(ConfigError, match="not in the local Hugging Face cache"):
            models.resolve(name, registry=Registry(tmp_path / "home"), paths=False)


def test_the_home_of_an_unknown_user_is_a_model_that_does_not_exist(tmp_path: Path) -> None:
    """``~nobody`` cannot be expanded (no such user): it is a model that is not there, for a
    client and for the operator alike, never an exception (found by the API fuzz test)."""
    name = "~ftlens-no-such-user/model"
    with pytest.raises(ConfigError, match="is not known here"):
        models.resolve(name, registry=Registry(tmp_path), paths=False)
    with pytest.raises(ConfigError, match="is not a model directory"):
        models.resolve(name, registry=Registry(tmp_path))
    with pytest.raises(ConfigError, match="is not a model directory"):
        Registry(tmp_path).add("mine", name)
