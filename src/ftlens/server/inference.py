"""Chat inference for the service: which models can be served, a small cache of loaded ones,
and a batcher that runs concurrent requests for the same model as one batch.

One inference thread runs the batches (torch uses every core within a batch); requests that
arrive while a batch runs wait and form the next one. This is the seam where a vLLM endpoint
serving the adapters would plug in."""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ftlens.server.catalog import Catalog
from ftlens.train.infer import Completion, GenerationRequest, Progress, Refused


class ModelPool:
    """Loads base and fine-tuned models on first use and keeps the ``capacity`` most recently
    used (a LoRA adapter is merged into its copy of the base model for speed)."""

    def __init__(self, catalog: Catalog, capacity: int = 2) -> None:
        self.catalog, self.store, self.capacity = catalog, catalog.store, capacity
        self._loaded: OrderedDict[str, tuple[Any, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def exists(self, name: str) -> bool:
        """A loaded model exists (a deleted one is forgotten first); others are looked up."""
        return name in self._loaded or self.catalog.exists(name)

    def forget(self, name: str) -> None:
        """Drop a loaded model (it was deleted)."""
        with self._lock:
            self._loaded.pop(name, None)

    def get(self, name: str) -> tuple[Any, Any]:
        with self._lock:
            if name in self._loaded:
                self._loaded.move_to_end(name)
                return self._loaded[name]
            pair = self._load(name)
            self._loaded[name] = pair
            while len(self._loaded) > self.capacity:
                self._loaded.popitem(last=False)
            return pair

    def _load(self, name: str) -> tuple[Any, Any]:
        from ftlens.train import models
        from ftlens.train.artifacts import load_tuned

        folder: Path | None = self.store.find_model(name)
        if folder is None:
            model, tok = models.load_model(
                models.resolve(name, registry=self.catalog.registry, paths=False))
        else:
            model, tok = load_tuned(folder)
            if hasattr(model, "merge_and_unload"):
                model = model.merge_and_unload()
        model.eval()
        return model, tok


# a request, its answer, and who hears about its steps
_Waiting = tuple[GenerationRequest, "asyncio.Future[Completion]", Progress | None]


class Batcher:
    def __init__(self, pool: ModelPool, max_batch: int = 16, window_s: float = 0.005,
                 offline_batch: int = 128) -> None:
        self.pool, self.max_batch, self.window_s = pool, max_batch, window_s
        self.offline_batch = offline_batch
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="ftlens-inference")
        self._pending: dict[str, list[_Waiting]] = {}
        self._draining: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def complete(self, model: str, request: GenerationRequest,
                       progress: Progress | None = None) -> Completion:
        """The completion of ``request``, decoded in a batch with those that arrive meanwhile.
        ``progress`` (called from the inference thread) follows it step by step."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Completion] = loop.create_future()
        self._pending.setdefault(model, []).append((request, future, progress))
        if model not in self._draining:
            self._draining.add(model)
            task = loop.create_task(self._drain(model))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _drain(self, model: str) -> None:
        loop = asyncio.get_running_loop()
        try:
            await asyncio.sleep(self.window_s)  # let concurrent requests join the batch
            queue = self._pending[model]
            while queue:
                batch, queue[:] = queue[:self.max_batch], queue[self.max_batch:]
                try:
                    results = await loop.run_in_executor(
                        self._executor, self._run, model, [r for r, _, _ in batch],
                        [p for _, _, p in batch])
                except Exception as exc:  # every waiting request gets the error
                    for _, future, _ in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future, _), result in zip(batch, results, strict=True):
                    if future.done():
                        continue
                    if isinstance(result, Refused):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            self._draining.discard(model)

    async def complete_many(self, model: str, requests: Sequence[GenerationRequest]
                            ) -> list[Completion | Refused]:
        """Completions of many requests at once (a batch job's): decoded in batches of
        ``offline_batch``, requests of a similar token budget and length together (less
        padding, fewer wasted steps), each batch one turn of the inference thread, so live
        requests wait for one batch at most."""
        loop = asyncio.get_running_loop()
        order = sorted(range(len(requests)), key=lambda i: (
            requests[i].max_tokens, sum(len(str(m.get("content", "")))
                                        for m in requests[i].messages)))
        out: list[Completion | Refused | None] = [None] * len(requests)
        for start in range(0, len(order), self.offline_batch):
            chunk = order[start:start + self.offline_batch]
            done = await loop.run_in_executor(self._executor, self._run, model,
                                              [requests[i] for i in chunk], [])
            for i, completion in zip(chunk, done, strict=True):
                out[i] = completion
        return [c for c in out if c is not None]

    def _run(self, model: str, requests: list[GenerationRequest],
             progress: list[Progress | None]) -> list[Completion | Refused]:
        from ftlens.train.infer import generate

        net, tok = self.pool.get(model)
        return generate(net, tok, requests, progress)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

