"""Generation with logprobs and label scoring, checked against brute-force single-row passes
on the tiny model trained by the shared ``tiny_run``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tests.support.toy_chat import TOY, chat

from ftlens.errors import ConfigError
from ftlens.train import models
from ftlens.train.config import Event
from ftlens.train.engine import TrainResult
from ftlens.train.infer import GenerationRequest, _adjusted, _nucleus, _Row, generate, prompt_ids
from ftlens.train.scoring import score_labels

PROMPTS = [chat(text, label)["messages"][:-1] for text, label in TOY[:5]]
LONG = [{"role": "user", "content": "a much longer message " * 12}]


@pytest.fixture(scope="module")
def tuned(tiny_run: tuple[TrainResult, list[Event]]) -> tuple[object, object]:
    result, _ = tiny_run
    return result.model, result.tokenizer


def _brute_force(model: object, tok: object, prompt: list[dict[str, str]],
                 labels: list[str], *, first_token: bool) -> np.ndarray:
    """One unbatched full-model pass per label, summing the label's log-probabilities."""
    text = tok.apply_chat_template(prompt, tokenize=False,
                                   add_generation_prompt=True)
    n_prompt = len(tok(text, add_special_tokens=False)["input_ids"])
    scores = []
    for label in labels:
        ids = tok(text + label + tok.eos_token,
                  add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0].float(),
                                     dim=-1)
        stop = n_prompt + 1 if first_token else len(ids)
        scores.append(sum(float(logp[p - 1, ids[p]]) for p in range(n_prompt, stop)))
    probs = np.exp(np.array(scores) - max(scores))
    return probs / probs.sum()


@pytest.mark.parametrize("mode", ["first_token", "sequence"])
def test_label_probabilities_sum_to_one_and_equal_brute_force(
        tuned: tuple[object, object], mode: str) -> None:
    model, tok = tuned
    labels = ["spam", "ham", "unsure"]
    prompts = [*PROMPTS, LONG]
    result = score_labels(model, tok, prompts, labels, mode=mode, batch_tokens=300)
    assert result.mode == mode and result.probs.shape == (len(prompts), 3)
    assert np.allclose(result.probs.sum(axis=1), 1.0)
    for i, prompt in enumerate(prompts):
        expected = _brute_force(model, tok, prompt, labels, first_token=mode == "first_token")
        assert np.allclose(result.probs[i], expected, atol=1e-4), (i, result.probs[i], expected)


def test_auto_mode_uses_the_first_token_only_when_it_tells_labels_apart(
        tuned: tuple[object, object]) -> None:
    model, tok = tuned
    assert score_labels(model, tok, PROMPTS[:2], ["spam", "ham"]).mode == "first_token"
    shared = ["spam", "spam offer"]  # same first token
    assert score_labels(model, tok, PROMPTS[:2], shared).mode == "sequence"
    with pytest.raises(ConfigError, match="first tokens"):
        score_labels(model, tok, PROMPTS[:2], shared, mode="first_token")
    with pytest.raises(ConfigError):
        score_labels(model, tok, PROMPTS[:2], ["spam"])


def test_greedy_generation_reports_its_tokens_logprobs(tuned: tuple[object, object]) -> None:
    model, tok = tuned
    [out] = generate(model, tok, [GenerationRequest(PROMPTS[0], max_tokens=4, temperature=0,
                                                    top_logprobs=5)])
    assert out.prompt_tokens == len(prompt_ids(tok, PROMPTS[0]))
    assert 1 <= out.completion_tokens <= 4
    assert out.text == "".join(lp.token for lp in out.logprobs)
    for lp in out.logprobs:
        assert len(lp.top_logprobs) == 5
        assert lp.top_logprobs[0].token == lp.token  # greedy: the best is the chosen one
        assert lp.logprob == pytest.approx(lp.top_logprobs[0].logprob)
        values = [t.logprob for t in lp.top_logprobs]
        assert values == sorted(values, reverse=True) and all(v <= 0 for v in values)
        assert lp.bytes == list(lp.token.encode("utf-8"))


def test_batched_generation_equals_one_request_at_a_time(tuned: tuple[object, object]) -> None:
    model, tok = tuned
    requests = [GenerationRequest(p, max_tokens=6, temperature=0, top_logprobs=2)
                for p in [*PROMPTS[:3], LONG]]
    together = generate(model, tok, requests)
    for request, got in zip(requests, together, strict=True):
        [alone] = generate(model, tok, [request])
        assert got.text == alone.text and got.finish_reason == alone.finish_reason
        assert [t.logprob for t in got.logprobs] == pytest.approx(
            [t.logprob for t in alone.logprobs], abs=1e-4)


def test_sampling_is_reproducible_with_a_seed(tuned: tuple[object, object]) -> None:
    model, tok = tuned
    req = GenerationRequest(PROMPTS[1], max_tokens=8, temperature=1.5, seed=7)
    first, second = generate(model, tok, [req, req])
    assert first.text == second.text
    assert first.completion_tokens >= 1


def test_max_tokens_and_stop_strings() -> None:
    model, tok = models.load_model(models.resolve(models.TINY))  # untrained: rarely stops
    free = GenerationRequest(LONG, max_tokens=5, temperature=1.0, seed=3)
    [out] = generate(model, tok, [free])
    if out.finish_reason == "length":
        assert out.completion_tokens == 5
    assert out.text, "the sampled text is needed to pick a stop string"
    stop = out.text[1:3] if len(out.text) >= 3 else out.text
    [cut] = generate(model, tok, [GenerationRequest(LONG, max_tokens=5, temperature=1.0,
                                                    seed=3, stop=(stop,))])
    assert cut.finish_reason == "stop"
    assert cut.text == out.text[:out.text.find(stop)]
    kept = "".join(lp.token for lp in cut.logprobs)
    assert cut.text.startswith(kept) and len(cut.logprobs) < out.completion_tokens


def test_progress_follows_each_step_of_the_rows_that_ask() -> None:
    model, tok = models.load_model(models.resolve(models.TINY))  # untrained: rarely stops
    req = GenerationRequest(LONG, max_tokens=6, temperature=1.0, seed=5)
    heard: list[tuple[str, int]] = []
    out, other = generate(model, tok, [req, req],
                          [lambda text, tokens: heard.append((text, len(tokens))), None])
    assert other.text == out.text
    # one report per step while the row is still generating: its tokens so far
    assert [n for _, n in heard] == list(range(1, len(heard) + 1))
    assert len(heard) >= out.completion_tokens - 1
    for text, _ in heard:  # the answer so far (a split UTF-8 character may still change)
        assert out.text.startswith(text.rstrip("\ufffd"))


def test_logit_bias_penalties_and_top_p_steer_the_choice_not_the_reported_logprobs(
        tuned: tuple[object, object]) -> None:
    model, tok = tuned
    prompt = PROMPTS[0]
    plain = generate(model, tok, [GenerationRequest(prompt, max_tokens=6, temperature=0)])[0]
    first = tok.convert_tokens_to_ids(tok.tokenize(" zebra"))[0]
    forced = generate(model, tok, [GenerationRequest(
        prompt, max_tokens=3, temperature=0, logit_bias=((first, 100.0),))])[0]
    assert tok.convert_tokens_to_ids(tok.tokenize(forced.logprobs[0].token))[0] == first
    ids = tok(forced.text, add_special_tokens=False)["input_ids"]
    assert ids[0] == first and set(ids) == {first}  # +100 wins every step
    assert forced.logprobs[0].logprob < -1  # the model's own log-probability, still reported
    # a token banned with -100 never comes
    banned = generate(model, tok, [GenerationRequest(
        prompt, max_tokens=6, temperature=0,
        logit_bias=tuple((i, -100.0) for i in set(tok(plain.text)["input_ids"])))])[0]
    assert not set(tok(banned.text, add_special_tokens=False)["input_ids"]) & set(
        tok(plain.text, add_special_tokens=False)["input_ids"])
    # the penalties, as OpenAI defines them: minus frequency x count, minus presence once
    row = _Row(GenerationRequest(prompt, frequency_penalty=0.5, presence_penalty=0.25), 3)
    row.ids = [2, 2, 5]
    logp = torch.zeros(8)
    want = torch.zeros(8)
    want[2], want[5] = -(2 * 0.5 + 0.25), -(0.5 + 0.25)
    assert torch.equal(_adjusted(row, logp), want)
    assert _adjusted(_Row(GenerationRequest(prompt), 3), logp) is None  # nothing to adjust
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    assert torch.allclose(_nucleus(probs, 0.75), torch.tensor([0.625, 0.375, 0.0, 0.0]))
    # top_p so small that only the most likely token is left: sampling is greedy
    sampled = [generate(model, tok, [GenerationRequest(prompt, max_tokens=6, temperature=1.5,
                                                       top_p=1e-6, seed=s)])[0].text
               for s in range(3)]
    assert sampled == [plain.text] * 3
