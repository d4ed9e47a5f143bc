"""``ftlens serve --inference-url``: chat completions answered by a vLLM server, each
fine-tuned adapter loaded there once through vLLM's runtime LoRA endpoints. vLLM cannot run
here, so a stand-in on loopback implements those endpoints as vLLM documents them."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from openai import OpenAI
from tests.support.jobs import finish_job
from tests.support.service import KEY, Service, free_port, serve


class StandIn:
    """vLLM's OpenAI server, reduced to what ftlens uses: load/unload LoRA adapters by name
    and path, and chat completions (plain and streamed) for the base or a loaded adapter."""

    def __init__(self) -> None:
        self.adapters: dict[str, str] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.served = ["tiny-random-llama"]  # --served-model-name
        app = FastAPI()

        @app.get("/v1/models")
        async def models() -> Any:  # the base, then each loaded adapter with its parent
            return {"object": "list", "data": [
                *({"id": m, "object": "model", "root": m, "parent": None} for m in self.served),
                *({"id": a, "object": "model", "root": path, "parent": self.served[0]}
                  for a, path in self.adapters.items())]}

        @app.post("/v1/load_lora_adapter")
        async def load(request: Request) -> Any:
            body = await request.json()
            self.calls.append(("load", body))
            if body["lora_name"] in self.adapters:
                return JSONResponse({"error": f"The lora adapter '{body['lora_name']}' has "
                                              "already been loaded."}, status_code=400)
            assert (Path(body["lora_path"]) / "adapter_config.json").is_file()
            self.adapters[body["lora_name"]] = body["lora_path"]
            return JSONResponse(f"Success: LoRA adapter '{body['lora_name']}' added")

        @app.post("/v1/unload_lora_adapter")
        async def unload(request: Request) -> Any:
            body = await request.json()
            self.calls.append(("unload", body))
            self.adapters.pop(body["lora_name"], None)
            return JSONResponse("Success")

        @app.post("/v1/chat/completions")
        async def completions(request: Request) -> Any:
            body = await request.json()
            self.calls.append(("chat", body))
            model = body["model"]
            if body.get("max_tokens") == 999:  # what vLLM says past its context length
                return JSONResponse({"error": {"message": "max_tokens is too large"}},
                                    status_code=400)
            if model.startswith("ft:") and model not in self.adapters:
                return JSONResponse({"error": {"message": f"model {model} not found"}},
                                    status_code=404)
            text = f"answered by {'adapter' if model in self.adapters else 'base'}"
            if body.get("stream"):
                def events() -> Iterator[bytes]:
                    for piece in text.split(" "):
                        chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 1,
                                 "model": model, "choices": [{"index": 0, "delta": {
                                     "role": "assistant", "content": piece + " "},
                                     "finish_reason": None}]}
                        yield b"data: " + json.dumps(chunk).encode() + b"\n\n"
                    yield b"data: [DONE]\n\n"
                return StreamingResponse(events(), media_type="text/event-stream")
            return {"id": "c1", "object": "chat.completion", "created": 1, "model": model,
                    "choices": [{"index": 0, "finish_reason": "stop", "message": {
                        "role": "assistant", "content": text}}],
                    "usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}}

        import uvicorn

        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                    log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> StandIn:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def vllm() -> Iterator[StandIn]:
    with StandIn() as s:
        yield s


@pytest.fixture(scope="module")
def remote(vllm: StandIn, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    yield from serve(tmp_path_factory.mktemp("home"), api_key=KEY, workers=1,
                     inference_url=vllm.url)


@pytest.fixture(scope="module")
def client(remote: Service) -> OpenAI:
    return OpenAI(base_url=remote.url, api_key=KEY, max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def tuned(client: OpenAI) -> str:
    job = finish_job(client)
    assert job.status == "succeeded", job.error
    return str(job.fine_tuned_model)


def test_a_fine_tuned_model_is_answered_by_vllm_with_its_adapter_loaded_once(
        client: OpenAI, tuned: str, vllm: StandIn, remote: Service) -> None:
    ask = [{"role": "user", "content": "free prize now"}]
    for _ in range(2):
        reply = client.chat.completions.create(model=tuned, messages=ask, max_tokens=3)
        assert reply.choices[0].message.content == "answered by adapter"
    loads = [body for kind, body in vllm.calls if kind == "load"]
    assert len(loads) == 1 and loads[0]["lora_name"] == tuned
    assert Path(loads[0]["lora_path"]).is_relative_to(remote.home)
    chats = [body for kind, body in vllm.calls if kind == "chat"]
    assert chats[-1]["max_tokens"] == 3 and chats[-1]["messages"] == ask  # passed through
    streamed = client.chat.completions.create(model=tuned, messages=ask, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in streamed).strip() == (
        "answered by adapter")
    base = client.chat.completions.create(model="tiny-random-llama", messages=ask)
    assert base.choices[0].message.content == "answered by base"


@pytest.mark.parametrize("stream", [False, True])
def test_an_error_of_vllm_keeps_its_status(client: OpenAI, tuned: str, stream: bool) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model=tuned, max_tokens=999, stream=stream,
                                       messages=[{"role": "user", "content": "x"}])
    assert "max_tokens is too large" in err.value.message


def test_a_batch_is_answered_by_vllm_with_its_statuses(client: OpenAI, tuned: str,
                                                       vllm: StandIn) -> None:
    rows = [{"custom_id": f"v{i}", "method": "POST", "url": "/v1/chat/completions",
             "body": {"model": tuned, "max_tokens": 999 if i == 2 else 3,
                      "messages": [{"role": "user", "content": f"batch {i}"}]}}
            for i in range(5)]
    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    file = client.files.create(file=("b.jsonl", data), purpose="batch")
    batch = client.batches.create(input_file_id=file.id, endpoint="/v1/chat/completions",
                                  completion_window="24h")
    deadline = time.monotonic() + 120
    while (batch := client.batches.retrieve(batch.id)).status != "completed":
        assert batch.status in ("validating", "in_progress", "finalizing")
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert batch.request_counts is not None
    assert (batch.request_counts.completed, batch.request_counts.failed) == (4, 1)
    assert batch.output_file_id is not None and batch.error_file_id is not None
    out = [json.loads(x) for x in client.files.content(batch.output_file_id).text.splitlines()]
    assert [x["custom_id"] for x in out] == ["v0", "v1", "v3", "v4"]
    assert {x["response"]["body"]["choices"][0]["message"]["content"] for x in out} == {
        "answered by adapter"}
    (error,) = [json.loads(x) for x in client.files.content(batch.error_file_id).text.split(
        "\n") if x]
    assert error["custom_id"] == "v2" and error["response"]["status_code"] == 400
    assert error["error"]["message"] == "max_tokens is too large"
    sent = [body["messages"][0]["content"] for kind, body in vllm.calls if kind == "chat"]
    assert {f"batch {i}" for i in range(5)} <= set(sent)  # vLLM answered every request


def test_deleting_the_model_unloads_its_adapter(client: OpenAI, tuned: str,
                                                vllm: StandIn) -> None:
    client.chat.completions.create(model=tuned, messages=[{"role": "user", "content": "x"}])
    assert client.models.delete(tuned).deleted
    assert ("unload", {"lora_name": tuned}) in vllm.calls and tuned not in vllm.adapters


def test_an_adapter_is_not_loaded_on_another_base_model(client: OpenAI,
                                                        vllm: StandIn) -> None:
    job = finish_job(client)
    vllm.served = ["smollm2-135m-instruct"]
    try:
        with pytest.raises(openai.BadRequestError) as err:
            client.chat.completions.create(model=job.fine_tuned_model,
                                           messages=[{"role": "user", "content": "x"}])
    finally:
        vllm.served = ["tiny-random-llama"]
    assert err.value.code == "inference_model_mismatch"
    assert "trained on tiny-random-llama" in err.value.message
    assert "--served-model-name tiny-random-llama" in err.value.message
    assert job.fine_tuned_model not in vllm.adapters
    reply = client.chat.completions.create(model=job.fine_tuned_model,  # vLLM fixed: it loads
                                           messages=[{"role": "user", "content": "x"}])
    assert reply.choices[0].message.content == "answered by adapter"


def test_an_unreachable_inference_server_is_a_clear_502(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    for svc in serve(tmp_path / "home", api_key=KEY, workers=0, inference_url=url):
        client = OpenAI(base_url=svc.url, api_key=KEY, max_retries=0)
        with pytest.raises(openai.APIStatusError) as err:
            client.chat.completions.create(model="tiny-random-llama",
                                           messages=[{"role": "user", "content": "x"}])
        assert err.value.status_code == 502 and url in err.value.message

