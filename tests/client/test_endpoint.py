"""Choosing the endpoint and key; the key never shows."""

from __future__ import annotations

import pytest

from ftlens.client.endpoint import NO_KEY, OPENAI_URL, Endpoint, endpoint_from_cli
from ftlens.errors import ConfigError

SECRET = "sk-proj-SECRET0123456789"


def make(**kw: object) -> Endpoint:
    args: dict[str, object] = {"base_url": None, "use_openai": False,
                               "key_env": "OPENAI_API_KEY", "timeout": 60.0, "environ": {}}
    args.update(kw)
    return endpoint_from_cli(**args)  # type: ignore[arg-type]


def test_openai_needs_a_key() -> None:
    with pytest.raises(ConfigError, match="OPENAI_API_KEY is not set") as info:
        make(use_openai=True)
    assert "--api-key-env" in info.value.render()
    e = make(use_openai=True, environ={"OPENAI_API_KEY": SECRET})
    assert e.base_url == OPENAI_URL and e.api_key == SECRET


def test_a_local_endpoint_works_without_a_key() -> None:
    e = make(base_url="http://127.0.0.1:8000/v1")
    assert e.api_key == NO_KEY
    e = make(base_url="http://127.0.0.1:8000/v1", key_env="MY_KEY", environ={"MY_KEY": "abc1"})
    assert e.api_key == "abc1" and e.key_env == "MY_KEY"


@pytest.mark.parametrize(("kw", "message"), [
    ({}, "no endpoint to ask"),
    ({"base_url": "http://x/v1", "use_openai": True}, "are alternatives"),
    ({"base_url": "127.0.0.1:8000/v1"}, "is not an http(s) URL"),
    ({"base_url": "ftp://host/v1"}, "is not an http(s) URL"),
    ({"base_url": "http://x/v1", "timeout": 0.0}, "--timeout 0 must be positive"),
])
def test_bad_endpoint_options(kw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make(**kw)


def test_the_key_never_shows() -> None:
    e = make(base_url="https://user:pw@example.com/v1/", environ={"OPENAI_API_KEY": SECRET})
    assert SECRET not in repr(e)
    assert e.public == "https://example.com/v1"
    assert e.redact(f"Incorrect API key provided: {SECRET}.") == (
        "Incorrect API key provided: [redacted].")
    with pytest.raises(ConfigError) as info:
        make(base_url=f"ftp://{SECRET}@host/v1", environ={"OPENAI_API_KEY": SECRET})
    assert SECRET not in info.value.render()
