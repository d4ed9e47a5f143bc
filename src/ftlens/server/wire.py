"""Wire shapes: store rows to the JSON objects the openai SDK's types describe, OpenAI's error
body, and cursor pagination."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ftlens.train.infer import Completion, TokenLogprob


class ApiError(Exception):
    """An error answered as ``{"error": {"message", "type", "param", "code"}}``."""

    def __init__(self, status: int, message: str, *, param: str | None = None,
                 code: str | None = None, type: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.type = (
            status, message, param, code, type)

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param,
                          "code": self.code}}


def not_found(what: str, ident: str, param: str | None = None) -> ApiError:
    return ApiError(404, f"No such {what}: {ident!r}", param=param, code=None)


def file_object(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "object": "file", "bytes": row["bytes"],
            "created_at": row["created_at"], "filename": row["filename"],
            "purpose": row["purpose"], "status": "processed", "status_details": None,
            "expires_at": row.get("expires_at")}


def job_object(row: dict[str, Any]) -> dict[str, Any]:
    """A job as OpenAI shows it: its hyperparameters as asked (``"auto"`` where not given)
    until it starts, then the values used; a running job asked to cancel is ``cancelling``
    (not in the SDK's status ``Literal``, which it does not enforce: it parses the value as
    it is, as it does ftlens' ``paused``)."""
    hp = row.get("resolved_hyperparameters") or row["hyperparameters"] or {}
    kind = row.get("method") or "supervised"
    status = row["status"]
    if status == "running" and row.get("control") == "cancel":
        status = "cancelling"
    hyper = {k: hp.get(k, "auto") for k in ("n_epochs", "batch_size",
                                            "learning_rate_multiplier")}
    method_hyper = {**hyper, "beta": hp.get("beta", "auto")} if kind == "dpo" else hyper
    return {
        "id": row["id"], "object": "fine_tuning.job", "created_at": row["created_at"],
        "error": row["error"], "fine_tuned_model": row["fine_tuned_model"],
        "finished_at": row["finished_at"], "hyperparameters": hyper, "model": row["model"],
        "organization_id": "ftlens", "result_files": row["result_files"] or [],
        "seed": row["seed"], "status": status, "trained_tokens": row["trained_tokens"],
        "training_file": row["training_file"], "validation_file": row["validation_file"],
        "estimated_finish": row["estimated_finish"],
        "integrations": row.get("integrations") or [],
        "metadata": row["metadata"], "user_provided_suffix": row["suffix"],
        "method": {"type": kind, kind: {"hyperparameters": method_hyper}},
        **_task_fields(row.get("task_metrics")),
    }


def _task_fields(task: dict[str, Any] | None) -> dict[str, Any]:
    """A job with task metrics shows the legacy API's fields (an ftlens extension)."""
    if not task:
        return {}
    return {"compute_classification_metrics": True,
            "classification_positive_class": task.get("positive"),
            "classification_n_classes": len(task.get("labels") or ()),
            "classification_betas": task.get("betas")}


def batch_object(row: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "created_at", "input_file_id", "endpoint", "completion_window", "metadata",
            "model", "status", "errors", "output_file_id", "error_file_id", "request_counts",
            "in_progress_at", "finalizing_at", "completed_at", "failed_at", "cancelling_at",
            "cancelled_at", "expires_at")
    return {"object": "batch", "expired_at": None, **{k: row[k] for k in keys}}


def checked_metadata(value: Any) -> dict[str, str] | None:
    """``metadata`` as OpenAI takes it (a job's, a batch's), else a 400."""
    if value is not None and (not isinstance(value, dict) or len(value) > 16 or not all(
            isinstance(k, str) and isinstance(v, str) and len(k) <= 64 and len(v) <= 512
            for k, v in value.items())):
        raise ApiError(400, "metadata must map at most 16 string keys (up to 64 characters) "
                            "to string values (up to 512)", param="metadata")
    return value


def event_object(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "object": "fine_tuning.job.event",
            "created_at": row["created_at"], "level": row["level"],
            "message": row["message"], "data": row["data"], "type": row["type"]}


def checkpoint_object(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "object": "fine_tuning.job.checkpoint",
            "created_at": row["created_at"], "fine_tuned_model_checkpoint": row["name"],
            "fine_tuning_job_id": row["job_id"], "metrics": row["metrics"],
            "step_number": row["step"]}


def page(rows: Sequence[dict[str, Any]], shape: Callable[[dict[str, Any]], dict[str, Any]],
         after: str | None, limit: int) -> dict[str, Any]:
    """A cursor page over ``rows`` (already in list order): those after the row ``after``."""
    if not 1 <= limit <= 100:
        raise ApiError(400, "limit must be between 1 and 100", param="limit")
    start = 0
    if after is not None:
        ids = [r["id"] for r in rows]
        if after not in ids:
            raise ApiError(400, f"after: no such id {after!r} in this list", param="after")
        start = ids.index(after) + 1
    chunk = [shape(r) for r in rows[start:start + limit]]
    return {"object": "list", "data": chunk, "has_more": start + limit < len(rows),
            "first_id": chunk[0]["id"] if chunk else None,
            "last_id": chunk[-1]["id"] if chunk else None}


def _token(lp: TokenLogprob) -> dict[str, Any]:
    return {"token": lp.token, "logprob": lp.logprob, "bytes": lp.bytes,
            "top_logprobs": [{"token": t.token, "logprob": t.logprob, "bytes": t.bytes}
                             for t in lp.top_logprobs]}


def completion_object(ident: str, created: int, model: str, c: Completion,
                      logprobs: bool) -> dict[str, Any]:
    return {
        "id": ident, "object": "chat.completion", "created": created, "model": model,
        "system_fingerprint": "ftlens",
        "choices": [{"index": 0, "finish_reason": c.finish_reason,
                     "message": {"role": "assistant", "content": c.text, "refusal": None},
                     "logprobs": ({"content": [_token(t) for t in c.logprobs], "refusal": None}
                                  if logprobs else None)}],
        "usage": usage(c),
    }


def usage(c: Completion) -> dict[str, int]:
    return {"prompt_tokens": c.prompt_tokens, "completion_tokens": c.completion_tokens,
            "total_tokens": c.prompt_tokens + c.completion_tokens}


class ChunkStream:
    """The streamed form of one completion, built while it is generated: a role chunk, one
    chunk per token (with its logprobs) as soon as its text is final, the finish chunk and, if
    asked, a usage chunk. Text that could still turn out to begin a stop string is held back
    until it cannot (a stop string cuts the answer where it begins)."""

    def __init__(self, ident: str, created: int, model: str, logprobs: bool,
                 stops: Sequence[str] = ()) -> None:
        self.head = {"id": ident, "object": "chat.completion.chunk", "created": created,
                     "model": model, "system_fingerprint": "ftlens"}
        self.logprobs, self.stops = logprobs, [s for s in stops if s]
        self.sent_tokens, self.sent_text = 0, ""

    def start(self) -> dict[str, Any]:
        return self._chunk({"role": "assistant", "content": ""})

    def advance(self, text: str, tokens: Sequence[TokenLogprob], final: bool = False
                ) -> list[dict[str, Any]]:
        """Chunks for what became final in ``text`` (the answer so far, ``tokens`` its tokens);
        with ``final``, everything not sent yet. A character whose bytes have not all come yet
        decodes as U+FFFD: trailing ones are held back too."""
        safe = len(text) if final else min(len(text) - _held_back(text, self.stops),
                                           len(text.rstrip("\ufffd")))
        out = []
        while self.sent_tokens < len(tokens):
            token = tokens[self.sent_tokens]
            end = len(self.sent_text) + len(token.token)
            if end > safe or text[len(self.sent_text):end] != token.token:
                break  # not final yet, or a token that only decodes with the next ones
            out.append(self._chunk({"content": token.token}, lps=[token]))
            self.sent_tokens, self.sent_text = self.sent_tokens + 1, text[:end]
        if safe == len(text) > len(self.sent_text):  # tokens that decode together: one chunk
            out.append(self._chunk({"content": text[len(self.sent_text):]},
                                   lps=tokens[self.sent_tokens:]))
            self.sent_tokens, self.sent_text = len(tokens), text
        return out

    def end(self, c: Completion, include_usage: bool) -> list[dict[str, Any]]:
        out = self.advance(c.text, c.logprobs, final=True)
        out.append(self._chunk({}, finish=c.finish_reason))
        if include_usage:
            out.append({**self.head, "choices": [], "usage": usage(c)})
        return out

    def _chunk(self, delta: dict[str, Any], finish: str | None = None,
               lps: Sequence[TokenLogprob] = ()) -> dict[str, Any]:
        shown = lps if self.logprobs else ()
        return {**self.head, "choices": [{
            "index": 0, "delta": delta, "finish_reason": finish,
            "logprobs": ({"content": [_token(t) for t in shown], "refusal": None}
                         if shown else None)}]}


def _held_back(text: str, stops: Sequence[str]) -> int:
    """Length of the longest end of ``text`` that begins some stop string."""
    return max((k for s in stops for k in range(min(len(s) - 1, len(text)), 0, -1)
                if text.endswith(s[:k])), default=0)
