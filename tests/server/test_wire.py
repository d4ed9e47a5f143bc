"""The streamed form of a completion, built while it is generated (``wire.ChunkStream``)."""

from __future__ import annotations

from typing import Any

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


def test_tokens_that_only_decode_together_go_out_in_one_final_chunk() -> None:
    stream = ChunkStream("chatcmpl-1", 0, "m", logprobs=True)
    halves = [_tok("\ufffd"), _tok("\ufffd")]  # the two bytes of "é", decoded one by one
    assert stream.advance("é", halves) == []
    end = stream.end(Completion("é", "stop", 3, 2, halves), include_usage=False)
    assert _content(end) == ["é", None]
    assert len(end[0]["choices"][0]["logprobs"]["content"]) == 2
