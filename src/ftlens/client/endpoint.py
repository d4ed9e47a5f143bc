"""Which OpenAI-compatible endpoint to ask, with which key, and its errors in plain words.

The API key lives only in :class:`Endpoint` (hidden from its repr) and in the SDK client's
request header. Every message built here goes through :meth:`Endpoint.redact`, so a server that
echoes the key back in an error body cannot leak it into ftlens' output.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ftlens.errors import BackendError, ConfigError, MissingDependencyError
from ftlens.io.response_cache import public_endpoint

if TYPE_CHECKING:
    from openai import AsyncOpenAI

OPENAI_URL = "https://api.openai.com/v1"
NO_KEY = "ftlens-no-key"  # what a local endpoint gets when no key is set
SERVE_HINT = "`ftlens serve` listens on http://127.0.0.1:8000/v1"


@dataclass(frozen=True)
class Endpoint:
    base_url: str
    api_key: str = field(repr=False)
    key_env: str = "OPENAI_API_KEY"
    timeout: float = 60.0

    @property
    def public(self) -> str:
        return public_endpoint(self.base_url)

    def redact(self, text: str) -> str:
        """``text`` with the API key (if any) replaced."""
        if len(self.api_key) >= 4 and self.api_key != NO_KEY:
            text = text.replace(self.api_key, "[redacted]")
        return text

    def client(self) -> AsyncOpenAI:
        """An ``AsyncOpenAI`` client with the SDK's own retries off (ftlens retries)."""
        try:
            from openai import AsyncOpenAI
        except ImportError as exc:
            raise MissingDependencyError("openai", extra="serve") from exc
        return AsyncOpenAI(base_url=self.base_url, api_key=self.api_key, max_retries=0,
                           timeout=self.timeout, http_client=_http_client())


def _http_client() -> Any:
    """The SDK's aiohttp transport (its ``openai[aiohttp]`` extra, which ftlens installs):
    about 40 % less CPU per request than its default httpx transport. None (the default)
    where the SDK or aiohttp lacks it."""
    try:
        from openai import DefaultAioHttpClient
    except ImportError:
        return None
    try:
        return DefaultAioHttpClient()
    except RuntimeError:  # "you must have installed the package with the aiohttp extra"
        return None


def endpoint_from_cli(*, base_url: str | None, use_openai: bool, key_env: str, timeout: float,
                      environ: Mapping[str, str]) -> Endpoint:
    """``--base-url URL`` (any OpenAI-compatible endpoint) or ``--openai``, one of the two."""
    if base_url and use_openai:
        raise ConfigError("--base-url and --openai are alternatives",
                          hint="--openai is --base-url https://api.openai.com/v1; pick one")
    if not base_url and not use_openai:
        raise ConfigError("no endpoint to ask", hint=f"pass --base-url URL ({SERVE_HINT}) or "
                          "--openai for the OpenAI API")
    url = OPENAI_URL if use_openai else str(base_url)
    check_base_url(url)
    if timeout <= 0:
        raise ConfigError(f"--timeout {timeout:g} must be positive", hint="e.g. --timeout 60")
    key = environ.get(key_env, "")
    if not key:
        if use_openai:
            raise ConfigError(f"the environment variable {key_env} is not set",
                              hint=f"export {key_env}=sk-... (or name another variable with "
                              "--api-key-env)")
        key = NO_KEY
    return Endpoint(url, key, key_env, timeout)


def check_base_url(url: str, flag: str = "--base-url") -> None:
    """A clear error for a URL option that is not an http(s) URL with a host."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{flag} {public_endpoint(url)!r} is not an http(s) URL",
                          hint=f"e.g. {flag} http://127.0.0.1:8000/v1")


def _server_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        message = inner.get("message") if isinstance(inner, Mapping) else inner
        if message:
            return str(message)[:300]
        detail = body.get("detail")
        if detail:
            return str(detail)[:300]
    if isinstance(body, str) and body.strip():
        return body.strip()[:300]
    return str(getattr(exc, "message", exc))[:300]


def status_error(endpoint: Endpoint, status: int, exc: Any, *, model: str, line: int
                 ) -> BackendError:
    """A non-retryable HTTP error (or a retryable one that outlasted the retries, see
    :func:`gave_up`) as one clear message."""
    url = endpoint.public
    said = endpoint.redact(_server_message(exc))
    if status == 401:
        message = f"{url} refused the API key (401 Unauthorized): {said}"
        hint = (f"set {endpoint.key_env} to a valid key (or name another variable with "
                "--api-key-env)")
    elif status == 403:
        message = f"{url} denied access (403 Forbidden) to model {model!r}: {said}"
        hint = "use a key of the organisation or project that owns the model"
    elif status == 404:
        message = f"model {model!r} was not found at {url} (404): {said}"
        hint = ("check --model (a fine-tuned model's id looks like ft:gpt-4o-mini:org::abc123) "
                "and that --base-url ends with /v1, e.g. http://127.0.0.1:8000/v1")
    else:
        message = f"{url} rejected the request for line {line} ({status}): {said}"
        hint = ("if it is about logprobs, rerun with --top-logprobs 0; about the length, "
                "lower --max-tokens; `ftlens audit` checks the data")
    return BackendError(message, status_code=status, body=said, hint=hint)


def gave_up(endpoint: Endpoint, cause: str, attempts: int, detail: str) -> BackendError:
    """The retries of one request ran out."""
    url = endpoint.public
    detail = endpoint.redact(detail)
    resume = "the answers so far are cached: rerun the same command to resume"
    if cause == "connection":
        return BackendError(f"cannot reach {url} ({attempts} attempts): {detail}",
                            hint=f"is the server running? {SERVE_HINT}; check --base-url")
    if cause == "timeout":
        return BackendError(f"{url} did not answer within {endpoint.timeout:g} s "
                            f"({attempts} attempts)",
                            hint=f"raise --timeout or lower --concurrency; {resume}")
    return BackendError(f"{url} kept failing ({cause}, {attempts} attempts): {detail}",
                        hint=f"lower --concurrency or raise --retries; {resume}")


def api_call(what: str, fn: Callable[[], Any]) -> Any:
    """Run an SDK call, turning its errors into one clear :class:`BackendError`."""
    import openai

    try:
        return fn()
    except openai.APIStatusError as exc:
        body = exc.body if isinstance(exc.body, dict) else {}
        message = body.get("message") or str(exc)
        raise BackendError(f"{what} failed ({exc.status_code}): {message}",
                           status_code=exc.status_code) from None
    except openai.APIConnectionError as exc:
        raise BackendError(f"{what} failed: cannot reach the endpoint ({exc})",
                           hint="start `ftlens serve` or check --base-url") from None
