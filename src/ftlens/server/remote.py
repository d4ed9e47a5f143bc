"""Chat completions served by a vLLM server (``ftlens serve --inference-url URL``): requests
are passed through to its OpenAI-compatible API, and each fine-tuned model's LoRA adapter is
loaded there on first use with vLLM's runtime LoRA endpoints (``POST /v1/load_lora_adapter``,
``POST /v1/unload_lora_adapter``; vLLM runs with ``--enable-lora`` and
``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``). The adapter is named after the fine-tuned model
and loaded from its folder, so vLLM must see the service's home at the same path (one machine,
or a shared file system). Base models are asked under their ftlens name (``vllm serve …
--served-model-name smollm2-135m-instruct``)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from ftlens.server.store import Store
from ftlens.server.wire import ApiError

TIMEOUT_S = 600


class RemoteInference:
    def __init__(self, url: str, store: Store, api_key: str | None = None) -> None:
        self.url, self.store = url.rstrip("/"), store
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._loaded: set[str] = set()
        self._lock = asyncio.Lock()

    async def _post(self, path: str, body: dict[str, Any] | None) -> tuple[int, Any]:
        """POST ``body`` to ``path`` (GET when ``body`` is None)."""
        import aiohttp

        try:
            async with aiohttp.ClientSession(
                    timeout=aiohttp.ClientTimeout(total=TIMEOUT_S)) as session, session.request(
                    "GET" if body is None else "POST", f"{self.url}{path}", json=body,
                    headers=self.headers) as resp:
                return resp.status, await _body(resp)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ApiError(502, f"the inference server at {self.url} did not answer "
                                f"({type(exc).__name__})", code="inference_unavailable") from None

    async def ensure(self, model: str) -> None:
        """Load the fine-tuned model's adapter into vLLM, once (base models need nothing)."""
        folder = self.store.find_model(model)
        if folder is None or model in self._loaded:
            return
        if not (folder / "adapter_config.json").is_file():
            raise ApiError(400, f"{model} is a fully fine-tuned model: only LoRA adapters are "
                                "served through --inference-url", param="model")
        async with self._lock:
            if model in self._loaded:
                return
            await self._check_base(model, folder)
            status, data = await self._post("/load_lora_adapter",
                                            {"lora_name": model, "lora_path": str(folder)})
            if status != 200 and "already" not in str(data):
                raise ApiError(502, f"the inference server refused to load {model}'s adapter "
                                    f"({status}): {str(data)[:300]}",
                               code="inference_unavailable")
            self._loaded.add(model)

    async def _check_base(self, model: str, folder: Any) -> None:
        """The adapter's base model must be one vLLM serves (under its ftlens name): an
        adapter applied to other weights answers, but wrongly."""
        from ftlens.train.artifacts import read_meta

        base = str(read_meta(folder).get("base_model"))
        status, data = await self._post("/models", None)
        served = [str(m.get("id")) for m in (data.get("data") or [])
                  if isinstance(m, dict) and not m.get("parent")] \
            if status == 200 and isinstance(data, dict) else None
        if served is not None and base not in served:
            raise ApiError(400, f"{model} was trained on {base}, but the inference server "
                                f"serves {', '.join(served) or 'no base model'}: start vLLM on "
                                f"{base}'s weights with --served-model-name {base}",
                           param="model", code="inference_model_mismatch")

    async def complete(self, body: dict[str, Any]) -> tuple[int, Any]:
        """The completion as vLLM answered it (after :meth:`ensure`)."""
        return await self._post("/chat/completions", body)

    async def stream(self, body: dict[str, Any]) -> tuple[int, Any, AsyncIterator[bytes] | None]:
        """A streamed completion (after :meth:`ensure`): vLLM's status, and either its error
        body or the iterator of its server-sent events."""
        import aiohttp

        session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT_S))
        try:
            resp = await session.post(f"{self.url}/chat/completions", json=body,
                                      headers=self.headers)
        except (aiohttp.ClientError, TimeoutError) as exc:
            await session.close()
            raise ApiError(502, f"the inference server at {self.url} did not answer "
                                f"({type(exc).__name__})", code="inference_unavailable") from None
        if resp.status != 200:
            data = await _body(resp)
            resp.release()
            await session.close()
            return resp.status, data, None

        async def events() -> AsyncIterator[bytes]:
            try:
                async for chunk in resp.content.iter_any():
                    yield chunk
            except (aiohttp.ClientError, TimeoutError) as exc:
                error = {"error": {"message": f"the inference server at {self.url} failed "
                                              f"mid-stream ({type(exc).__name__})"}}
                yield b"data: " + json.dumps(error).encode() + b"\n\n"
            finally:
                resp.release()
                await session.close()

        return 200, None, events()

    async def forget(self, model: str) -> None:
        """Unload a deleted model's adapter (if it was loaded)."""
        if model in self._loaded:
            self._loaded.discard(model)
            await self._post("/unload_lora_adapter", {"lora_name": model})


async def _body(resp: Any) -> Any:
    """A reply's JSON, or its text when it is not JSON (never an exception)."""
    text = await resp.text()
    try:
        return json.loads(text)
    except ValueError:
        return {"error": {"message": text[:500] or f"status {resp.status}"}}
