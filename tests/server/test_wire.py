"""The streamed form of a completion, built while it is generated (``wire.ChunkStream``), and
its events (``app._stream``)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from ftlens.server.chat import _stream
from ftlens.server.wire import ChunkStream
from ftlens.train.infer import Completion, TokenLogprob


def _tok(text: str) -> TokenLogprob:
    return TokenLogprob(text, -0.5, list(text.encode()))


def _content(chunks: list[dict[str, Any]]) -> list[str]:
    return [c["choices"][0]["delta"].get("content") for c in chunks if c["choices"]]


def test_tokens_go_out_as_they_come_without_stop_strings() -> None:
    stream = ChunkStream("chatcmpl-1", 0, "m", logprobs=True)
    tokens = [_tok("Hel"), _tok("lo")]
    assert _content([stream.start()]) == [""]
    assert _content(stream.advance("Hel", tokens[:1])) == ["Hel"]
    first = stream.advance("Hello", tokens)
    assert _content(first) == ["lo"]
    assert first[0]["choices"][0]["logprobs"]["content"][0]["token"] == "lo"
    end = stream.end(Completion("Hello", "length", 3, 2, tokens), include_usage=True)
    assert _content(end) == [None]  # the finish chunk carries no content
    assert end[0]["choices"][0]["finish_reason"] == "length"
    assert end[1]["usage"] == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}


def test_text_that_may_begin_a_stop_string_is_held_back() -> None:
    stream = ChunkStream("chatcmpl-1", 0, "m", logprobs=False, stops=[" world"])
    hel, lo, wo = _tok("Hel"), _tok("lo"), _tok(" wo")
    sent = _content(stream.advance("Hel", [hel]))
    sent += _content(stream.advance("Hello", [hel, lo]))
    sent += _content(stream.advance("Hello wo", [hel, lo, wo]))  # " wo" may begin " world"
    assert sent == ["Hel", "lo"]
    # the stop string completed: the answer is cut where it began, " wo" never went out
    end = stream.end(Completion("Hello", "stop", 3, 4, [hel, lo]), include_usage=False)
    assert _content(end) == [None]
    assert end[0]["choices"][0]["logprobs"] is None


def test_held_back_text_goes_out_when_it_stops_looking_like_a_stop_string() -> None:
    stream = ChunkStream("chatcmpl-1", 0, "m", logprobs=False, stops=["STOP"])
    a, st, ay = _tok("a"), _tok("ST"), _tok("AY")
    assert _content(stream.advance("aST", [a, st])) == ["a"]
    assert _content(stream.advance("aSTAY", [a, st, ay])) == ["ST", "AY"]


def test_a_character_split_across_tokens_goes_out_whole_as_soon_as_it_is_complete() -> None:
    stream = ChunkStream("chatcmpl-1", 0, "m", logprobs=True)
    a, h1, h2, b = _tok("a"), _tok("\ufffd"), _tok("\ufffd"), _tok("b")
    assert _content(stream.advance("a", [a])) == ["a"]
    assert stream.advance("a\ufffd", [a, h1]) == []  # half of "é": held back
    chunks = stream.advance("aé", [a, h1, h2])
    assert _content(chunks) == ["é"]
    assert len(chunks[0]["choices"][0]["logprobs"]["content"]) == 2
    assert _content(stream.advance("aéb", [a, h1, h2, b])) == ["b"]  # and on, token by token
    assert _content(stream.end(Completion("aéb", "stop", 3, 4, [a, h1, h2, b]), False)) == [
        None]


def test_tokens_that_only_decode_together_go_out_in_one_chunk() -> None:
    stream = ChunkStream("chatcmpl-1", 0, "m", logprobs=True)
    halves = [_tok("\ufffd"), _tok("\ufffd")]  # the two bytes of "é", decoded one by one
    chunks = stream.advance("é", halves)
    assert _content(chunks) == ["é"]
    assert len(chunks[0]["choices"][0]["logprobs"]["content"]) == 2
    end = stream.end(Completion("é", "stop", 3, 2, halves), include_usage=False)
    assert _content(end) == [None]


class _FailsAfterOneToken:
    """A batcher whose generation breaks after its first token (a fault that the real model
    does not make on demand)."""

    async def complete(self, model: str, req: Any, progress: Any) -> Completion:
        progress("He", [_tok("He")])
        await asyncio.sleep(0)
        raise RuntimeError("the device /opt/site/dev0 went away")


def test_an_error_after_the_first_chunk_goes_out_as_an_error_event(
        caplog: pytest.LogCaptureFixture) -> None:
    async def run() -> list[bytes]:
        stream = ChunkStream("chatcmpl-1", 0, "m", logprobs=False)
        response = await _stream(_FailsAfterOneToken(), "m", None, stream,  # type: ignore[arg-type]
                                 include_usage=False, ident="req_abc")
        return [part async for part in response.body_iterator]  # type: ignore[misc]

    events = [json.loads(e.removeprefix(b"data: ")) for e in asyncio.run(run())]
    assert [e["choices"][0]["delta"].get("content") for e in events[:-1]] == ["", "He"]
    assert events[-1] == {"error": {  # the exception goes to the log alone
        "message": "internal error (request id req_abc)",
        "type": "server_error", "param": None, "code": None}}  # and no [DONE]
    logged = [r for r in caplog.records if "req_abc" in r.getMessage()]
    assert logged and "went away" in str(logged[0].exc_info[1])
