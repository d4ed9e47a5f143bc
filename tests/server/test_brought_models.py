"""The models an operator brings, through the official openai SDK: a registered tiny
Qwen2-style model trained on function-calling data, a Llama 3-style one offered with
``serve --model``, and a Phi-3-style hub id in a temporary Hugging Face cache, all offline;
chat on the fine-tuned models; ``/v1/models`` and ``DELETE /v1/models/{id}``; and the models a
client may not name."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from openai import OpenAI
from tests.support.chat_families import FAMILIES, cache_hub_model, save
from tests.support.jobs import finish_job
from tests.support.service import KEY, Service, serve
from tests.support.toy_chat import TOY, chat

from ftlens.train.registry import Registry

CITIES = ["Paris", "Rome", "Oslo", "Lima", "Cairo", "Quito", "Hanoi", "Dakar", "Riga",
          "Sofia", "Accra", "Bern"]
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "the weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]


def _tool_example(i: int, city: str) -> dict[str, Any]:
    call = {"id": f"call_{i}", "type": "function",
            "function": {"name": "get_weather", "arguments": json.dumps({"city": city})}}
    return {"tools": TOOLS, "messages": [
        {"role": "user", "content": f"what is the weather in {city}"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": f"call_{i}", "content": "sunny, 21 degrees"},
        {"role": "assistant", "content": f"sunny in {city}"}]}


def _upload(client: OpenAI, rows: list[dict[str, Any]]) -> str:
    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    return client.files.create(file=("train.jsonl", io.BytesIO(data)), purpose="fine-tune").id


@pytest.fixture(scope="module")
def brought(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, Path]]:
    root = tmp_path_factory.mktemp("brought")
    home = root / "home"
    Registry(home).add("qwen-tiny", str(save(FAMILIES["chatml"], root / "qwen")))
    Registry(home).add("gemma-tiny", str(save(FAMILIES["gemma"], root / "gemma")))
    cache_hub_model(FAMILIES["phi3"], root / "hub", "acme/tiny-phi3")
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HUB_CACHE", str(root / "hub"))  # the workers inherit it
    mp.setenv("HF_HUB_OFFLINE", "1")
    llama = save(FAMILIES["llama3"], root / "llama")
    yield from ((s, root) for s in serve(home, api_key=KEY, workers=1,
                                         models={"llama-session": str(llama)}))
    mp.undo()


@pytest.fixture(scope="module")
def client(brought: tuple[Service, Path]) -> OpenAI:
    return OpenAI(base_url=brought[0].url, api_key=KEY, max_retries=0, timeout=120)


def _finish(client: OpenAI, model: str, rows: list[dict[str, Any]]) -> Any:
    return finish_job(client, model, rows, n_epochs=1, batch_size=4,
                      learning_rate_multiplier=2)


def test_models_lists_the_registered_ones(client: OpenAI) -> None:
    ids = {m.id for m in client.models.list()}
    assert {"smollm2-135m-instruct", "tiny-random-llama", "qwen-tiny", "gemma-tiny",
            "llama-session"} <= ids
    assert client.models.retrieve("qwen-tiny").owned_by == "operator"


@pytest.mark.parametrize(("model", "rows"), [
    ("qwen-tiny", [_tool_example(i, c) for i, c in enumerate(CITIES)]),
    ("llama-session", [chat(t, y) for t, y in TOY]),
    ("acme/tiny-phi3", [chat(t, y) for t, y in TOY]),
])
def test_a_brought_model_fine_tunes_and_chats(client: OpenAI, model: str,
                                              rows: list[dict[str, Any]]) -> None:
    job = _finish(client, model, rows)
    assert job.status == "succeeded", job.error
    assert job.trained_tokens and job.fine_tuned_model.startswith(f"ft:{model}:")
    reply = client.chat.completions.create(
        model=job.fine_tuned_model, max_tokens=4, temperature=0,
        messages=[{"role": "user", "content": "what is the weather in Paris"}])
    assert reply.choices[0].message.content is not None


def test_function_calling_on_a_template_without_tools_is_refused_at_creation(
        client: OpenAI) -> None:
    rows = [chat(t, y) for t, y in TOY] + [_tool_example(i, c) for i, c in enumerate(CITIES)]
    with pytest.raises(openai.BadRequestError) as err:
        client.fine_tuning.jobs.create(model="gemma-tiny", training_file=_upload(client, rows))
    assert err.value.code == "invalid_training_file"
    assert f"line {len(TOY) + 1}: the chat template of gemma-tiny has no place for 'tools'" in (
        err.value.message)


def test_a_client_cannot_name_a_path_or_an_unknown_model(client: OpenAI,
                                                         brought: tuple[Service, Path]) -> None:
    file_id = _upload(client, [chat(t, y) for t, y in TOY])
    for model in (str(brought[1] / "qwen"), "acme/not-cached", "nobody"):
        with pytest.raises(openai.BadRequestError) as err:
            client.fine_tuning.jobs.create(model=model, training_file=file_id)
        assert err.value.code == "model_not_available", model
        assert "qwen-tiny" in err.value.message  # says what can be used


def test_delete_a_fine_tuned_model(client: OpenAI) -> None:
    job = _finish(client, "tiny-random-llama", [chat(t, y) for t, y in TOY])
    name = job.fine_tuned_model
    assert client.models.delete(name).deleted
    assert name not in {m.id for m in client.models.list()}
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model=name, messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.NotFoundError):
        client.models.delete(name)
    with pytest.raises(openai.PermissionDeniedError):
        client.models.delete("qwen-tiny")
    assert client.fine_tuning.jobs.retrieve(job.id).status == "succeeded"  # the job stays


@pytest.mark.parametrize(("method", "words"), [
    ({"type": "reinforcement", "reinforcement": {}}, "reinforcement fine-tuning"),
    ({"type": "magic"}, "an unknown method"),
])
def test_methods_other_than_supervised_and_dpo_are_refused_by_name(
        client: OpenAI, method: Any, words: str) -> None:
    file_id = _upload(client, [chat(t, y) for t, y in TOY])
    with pytest.raises(openai.BadRequestError) as err:
        client.fine_tuning.jobs.create(model="tiny-random-llama", training_file=file_id,
                                       method=method)
    assert err.value.code == "method_not_supported" and words in err.value.message
    assert "use 'supervised' or 'dpo'" in err.value.message


def test_a_method_of_the_wrong_shape_is_a_400_naming_the_field(client: OpenAI) -> None:
    file_id = _upload(client, [chat(t, y) for t, y in TOY])
    for method, param in [({"type": ["dpo"]}, "method.type"),
                          ({"type": "supervised", "supervised": "x"}, "method.supervised"),
                          ({"type": "supervised", "supervised": {"hyperparameters": [1]}},
                           "method.supervised.hyperparameters")]:
        with pytest.raises(openai.BadRequestError) as err:
            client.fine_tuning.jobs.create(model="tiny-random-llama", training_file=file_id,
                                           method=method)  # type: ignore[arg-type]
        assert err.value.param == param, err.value.message


def test_an_adapter_on_a_hub_model_exports_with_the_hub_id(
        client: OpenAI, brought: tuple[Service, Path], tmp_path: Path) -> None:
    from ftlens.steps.export import export_model

    job = _finish(client, "acme/tiny-phi3", [chat(t, y) for t, y in TOY])
    done = export_model(job.fine_tuned_model, tmp_path / "out", home=brought[0].home)
    config = json.loads((tmp_path / "out" / "adapter_config.json").read_text())
    assert done.base == config["base_model_name_or_path"] == "acme/tiny-phi3"
