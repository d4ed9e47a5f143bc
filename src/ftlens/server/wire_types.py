"""The request bodies the service takes, as typed models mirroring the openai SDK's params
(``ChatCompletionCreateParams``, ``JobCreateParams``, ``BatchCreateParams``).

Every body is validated against its model before any handler code runs: a wrong type, a
missing field or a key the API does not have is a 400 naming the parameter
(:func:`validated`), never an exception inside a handler. The handlers then check what a type
cannot say (ranges that depend on each other, files that must exist, what ftlens cannot do).
The models are also the service's OpenAPI schema, which the tests fuzz."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ftlens.server.wire import ApiError

Int64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]


class Strict(BaseModel):
    """No coercion ("5" is not 5) and no keys the API does not have."""

    model_config = ConfigDict(strict=True, extra="forbid")


# chat completions ------------------------------------------------------------------------
class TextPart(Strict):
    type: Literal["text"]
    text: str


class OtherPart(BaseModel):
    """Image, audio, file and refusal parts: typed so that they can be refused by name."""

    model_config = ConfigDict(strict=True, extra="allow")
    type: Literal["image_url", "input_audio", "file", "refusal"]


ContentPart = TextPart | OtherPart


class ChatMessage(Strict):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None
    function_call: dict[str, Any] | None = None
    refusal: str | None = None
    audio: dict[str, Any] | None = None


class StreamOptions(Strict):
    include_usage: bool | None = None
    include_obfuscation: bool | None = None


class ChatCompletionBody(Strict):
    model: str
    messages: Annotated[list[ChatMessage], Field(min_length=1)]
    temperature: float | None = None
    top_p: float | None = None
    n: int | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    seed: Int64 | None = None
    # accepted and without effect here, as they are informational
    user: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    metadata: dict[str, str] | None = None
    service_tier: str | None = None
    store: bool | None = None
    # typed so that they can be refused by name (chat.UNSUPPORTED)
    tools: list[Any] | None = None
    tool_choice: Any = None
    functions: list[Any] | None = None
    function_call: Any = None
    parallel_tool_calls: bool | None = None
    response_format: dict[str, Any] | None = None
    audio: dict[str, Any] | None = None
    modalities: list[str] | None = None
    prediction: dict[str, Any] | None = None
    reasoning_effort: str | None = None
    verbosity: str | None = None
    web_search_options: dict[str, Any] | None = None
    prompt_cache_retention: str | None = None


# fine-tuning jobs ------------------------------------------------------------------------
class MethodSection(Strict):
    hyperparameters: dict[str, Any] | None = None


class Method(Strict):
    type: str = "supervised"  # the handler names what it does not support
    supervised: MethodSection | None = None
    dpo: MethodSection | None = None
    reinforcement: dict[str, Any] | None = None


class WandbSettings(Strict):
    """A W&B run's settings as OpenAI takes them (the API key is the service's own
    ``WANDB_API_KEY``, never a job's)."""

    project: Annotated[str, Field(min_length=1)]
    name: str | None = None
    entity: str | None = None
    tags: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = None


class Integration(Strict):
    type: Literal["wandb"]
    wandb: WandbSettings


class JobBody(Strict):
    model: str
    training_file: str
    validation_file: str | None = None
    hyperparameters: dict[str, Any] | None = None
    method: Method | None = None
    suffix: str | None = None
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] | None = None
    metadata: dict[str, Any] | None = None
    integrations: list[Integration] | None = None
    # the legacy fine-tunes API's task metrics (an ftlens extension: the SDK's extra_body)
    compute_classification_metrics: bool | None = None
    classification_positive_class: str | None = None
    classification_n_classes: int | None = None
    classification_betas: list[float] | None = None


# files -----------------------------------------------------------------------------------
class ExpiresAfter(BaseModel):
    """A file's ``expires_after`` (OpenAI's bounds: an hour to 30 days). Not strict: an
    upload's form sends the seconds as text."""

    model_config = ConfigDict(extra="forbid")
    anchor: Literal["created_at"]
    seconds: Annotated[int, Field(ge=3600, le=2592000)]


def file_expiry(form: Mapping[str, Any]) -> int | None:
    """The seconds after upload that a file's ``expires_after`` asks for (None: it does not
    expire), from the upload's form: the SDK sends ``expires_after[anchor]`` and
    ``expires_after[seconds]``; a JSON object in ``expires_after`` is taken too. Else a 400
    naming ``expires_after``."""
    given: Any = {k[len("expires_after["):-1]: v for k, v in form.items()
                  if k.startswith("expires_after[") and k.endswith("]")}
    if "expires_after" in form:
        try:
            given = json.loads(str(form["expires_after"]))
        except (ValueError, RecursionError):  # not JSON, or nested thousands deep
            given = None
    elif not given:
        return None
    try:
        return ExpiresAfter.model_validate(given).seconds
    except ValidationError:
        raise ApiError(400, "expires_after must be {\"anchor\": \"created_at\", \"seconds\": "
                            "N} with N from 3600 (an hour) to 2592000 (30 days)",
                       param="expires_after") from None


# batches ---------------------------------------------------------------------------------
class BatchBody(Strict):
    input_file_id: str
    endpoint: str
    completion_window: str
    metadata: dict[str, Any] | None = None
    output_expires_after: dict[str, Any] | None = None


Body = TypeVar("Body", bound=BaseModel)
_FIELD = re.compile(r"[a-z_][a-z0-9_]*")
_NOT_FIELDS = {"str", "int", "float", "bool", "list", "dict", "none"}


def validated(model: type[Body], body: Any) -> Body:
    """``body`` (parsed JSON) as ``model``, else a 400 naming the parameter at fault."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise problem(exc.errors(include_url=False)) from None


def problem(errors: Sequence[Any]) -> ApiError:
    """The most specific of pydantic's (or FastAPI's) validation errors, worded as OpenAI
    words a bad parameter."""
    if not errors:
        return ApiError(400, "the request body is not valid")
    broken = next((e for e in errors if e.get("type") == "json_invalid"), None)
    if broken is not None:  # FastAPI's location is ("body", offset)
        where = next((p for p in broken.get("loc", ()) if isinstance(p, int)), None)
        return ApiError(400, "the request body is not valid JSON" + (
            f" (at character {where})" if where is not None else ""))
    best = max(errors, key=lambda e: len(_path(e.get("loc", ()))))
    path = _path(best.get("loc", ()))
    param = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
    kind = best.get("type", "")
    if kind == "extra_forbidden":
        why = _UNKNOWN_WHY.get(tuple(path[-2:]), "")
        return ApiError(400, f"Unrecognized request argument supplied: {param}{why}",
                        param=param, code="unknown_parameter")
    if not param:
        return ApiError(400, "the request body must be a JSON object")
    message = _OR_INSTANCE.sub("", str(best.get("msg", "invalid value")))
    return ApiError(400, f"{param}: {message[:1].lower()}{message[1:]}", param=param)


#: why a key is refused, where the name alone does not say it
_UNKNOWN_WHY: dict[tuple[int | str, ...], str] = {
    ("wandb", "api_key"): "; a job never carries a W&B key: the service logs with its own "
    "WANDB_API_KEY (set it where `ftlens serve` runs)"}
_OR_INSTANCE = re.compile(r" or instance of \w+")


def _path(loc: Sequence[int | str]) -> list[int | str]:
    """The field names and indices of an error's location, without FastAPI's ``body`` and
    the names of union branches and validators pydantic adds (``str``,
    ``list[TextPart | OtherPart]``, ``TextPart``, ``constrained-int``). The field right
    after ``body`` keeps its name as it is (a form's ``expires_after[seconds]``)."""
    return [part for i, part in enumerate(loc) if isinstance(part, int) or (
        i == 1 and loc[0] == "body") or (
        _FIELD.fullmatch(part) and part not in _NOT_FIELDS
        and not (i == 0 and part in ("body", "query", "path")))]
