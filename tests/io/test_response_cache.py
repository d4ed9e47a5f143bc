"""The SQLite response cache: keys, round trips, the background writer, no secrets."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson
import pytest

from ftlens.errors import DataError
from ftlens.io.response_cache import ResponseCache, canonical, public_endpoint, request_key

URL = "http://127.0.0.1:8000/v1"
REQ = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0,
       "max_tokens": 16}


def test_key_ignores_dict_order_and_trailing_slash() -> None:
    shuffled = {"max_tokens": 16, "temperature": 0,
                "messages": [{"content": "hi", "role": "user"}], "model": "m"}
    assert request_key(URL, "m", REQ) == request_key(URL + "/", "m", shuffled)
    assert request_key(URL, "m", REQ) == request_key(URL, "m", canonical(REQ))


@pytest.mark.parametrize("change", [
    {"endpoint": "http://127.0.0.1:8001/v1"},
    {"endpoint": "https://api.openai.com/v1"},
    {"model": "other"},
    {"request": {**REQ, "max_tokens": 17}},
    {"request": {**REQ, "messages": [{"role": "user", "content": "hi!"}]}},
    {"request": {**REQ, "top_logprobs": 20, "logprobs": True}},
])
def test_key_changes_with_endpoint_model_and_request(change: dict[str, object]) -> None:
    endpoint = str(change.get("endpoint", URL))
    model = str(change.get("model", "m"))
    req = change.get("request", REQ)
    assert isinstance(req, dict)
    assert request_key(endpoint, model, req) != request_key(URL, "m", REQ)


def test_public_endpoint_drops_credentials() -> None:
    assert public_endpoint("https://user:sk-secret@example.com:8443/v1/") == (
        "https://example.com:8443/v1")
    assert request_key("https://user:sk-secret@example.com/v1", "m", REQ) == request_key(
        "https://example.com/v1", "m", REQ)


def test_round_trip_and_first_write_wins(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "cache.sqlite"
    key = request_key(URL, "m", REQ)
    with ResponseCache(path) as cache:
        assert cache.get_many([key]) == {}
        cache.put(key, URL, "m", REQ, b'{"choices": [1]}')
        cache.put(key, URL, "m", REQ, b'{"choices": [2]}')
        assert cache.get_many([key, "absent"]) == {key: {"choices": [1]}}
        assert len(cache) == 1
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    endpoint, model, request = db.execute(
        "SELECT endpoint, model, request FROM responses").fetchone()
    assert (endpoint, model) == (URL, "m")
    assert orjson.loads(request) == REQ


def test_get_many_in_chunks(tmp_path: Path) -> None:
    with ResponseCache(tmp_path / "c.sqlite") as cache:
        keys = [f"k{i}" for i in range(1234)]
        for i, k in enumerate(keys):
            cache.put(k, URL, "m", {"i": i}, orjson.dumps({"i": i}))
        got = cache.get_many([*keys, *keys[:10]])
        assert len(got) == 1234 and got["k1000"] == {"i": 1000}


def test_writer_commits_everything_by_close(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    cache = ResponseCache(path)
    with cache.writer() as writer:
        for i in range(500):
            writer.put(f"k{i}", URL, "m", {"i": i}, orjson.dumps({"i": i}))
    # a separate connection (another process, a resumed run) sees every row
    with ResponseCache(path) as other:
        assert len(other.get_many(f"k{i}" for i in range(500))) == 500
    cache.close()


def test_writer_failure_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    ResponseCache(path).close()
    writer = ResponseCache(path).writer()
    sqlite3.connect(path).execute("DROP TABLE responses")
    writer.put("k", URL, "m", REQ, b"{}")
    with pytest.raises(DataError, match="cannot write to the response cache"):
        writer.close()


def test_unusable_path_is_a_data_error(tmp_path: Path) -> None:
    (tmp_path / "dir.sqlite").mkdir()
    with pytest.raises(DataError, match="cannot open the response cache") as info:
        ResponseCache(tmp_path / "dir.sqlite")
    assert "--cache" in info.value.render()
