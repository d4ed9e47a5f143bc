"""The loss mask across five chat-template families (ChatML/Qwen2, Llama 3, Gemma, Mistral,
Phi-3), token by token: loss only on the assistant answers (their text and tool calls) and
their turn closer; nothing on system, user or tool messages or on ``weight: 0`` answers; and a
clear error, naming the model, for what a template cannot render or mask."""

from __future__ import annotations

from typing import Any

import pytest
from tests.support.chat_families import CHATML_MARKED, FAMILIES, Family, model, tokenizer

from ftlens.errors import ConfigError
from ftlens.train.masking import IGNORE, Encoded, Template, encode_chat

SYSTEM = {"role": "system", "content": "Classify this SMS as spam or ham."}
FIRST = {"role": "user", "content": "WIN a free prize now"}
SECOND = {"role": "user", "content": "are we still on for lunch"}
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "parameters": {"type": "object",
                                          "properties": {"city": {"type": "string"}}}}}]
CALL = {"role": "assistant", "content": None, "tool_calls": [
    {"id": "c1", "type": "function",
     "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]}
TOOL_REPLY = {"role": "tool", "tool_call_id": "c1", "content": "sunny, 21 degrees"}


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def family(request: pytest.FixtureRequest) -> Family:
    return FAMILIES[request.param]


@pytest.fixture(scope="module")
def tok(family: Family) -> Any:
    return tokenizer(family)


def trained(tok: Any, enc: Encoded) -> str:
    """The text of the trained tokens, checking each label is its token or IGNORE."""
    assert len(enc.labels) == len(enc.input_ids)
    assert all(label in (token, IGNORE) for token, label in zip(enc.input_ids, enc.labels,
                                                                  strict=True))
    return str(tok.decode([t for t, label in zip(enc.input_ids, enc.labels, strict=True)
                           if label != IGNORE]))


def conversation(family: Family, *, weight: int) -> list[dict[str, Any]]:
    opening = [] if family.name == "gemma" else [SYSTEM]  # Gemma has no system role
    return [*opening, FIRST, {"role": "assistant", "content": "ham", "weight": weight}, SECOND,
            {"role": "assistant", "content": "spam"}]


def test_only_the_answers_and_their_turn_closer_are_trained(family: Family, tok: Any) -> None:
    template = Template(tok, family.name)
    assert template.closer == family.closer
    enc = encode_chat(tok, conversation(family, weight=0), template=template)
    assert trained(tok, enc) == f"spam{family.closer}"
    full = tok.decode(enc.input_ids)
    assert FIRST["content"] in full and "ham" in full  # rendered, not trained
    enc = encode_chat(tok, conversation(family, weight=1), template=template)
    assert trained(tok, enc) == f"ham{family.closer}spam{family.closer}"


def test_the_turn_closer_is_the_templates_not_the_eos_token(family: Family, tok: Any) -> None:
    """Llama 3, Gemma and Phi-3 end a turn with another token than their eos."""
    enc = encode_chat(tok, [FIRST, {"role": "assistant", "content": "spam"}])
    assert trained(tok, enc).endswith(family.closer)
    if family.eos != family.closer:
        assert family.eos not in trained(tok, enc)


def test_text_parts_are_joined_as_the_audit_joins_them(family: Family, tok: Any) -> None:
    parts = [{"type": "text", "text": "WIN a free"}, {"type": "text", "text": "prize now"}]
    answer = {"role": "assistant", "content": [{"type": "text", "text": "spam"}]}
    enc = encode_chat(tok, [{"role": "user", "content": parts}, answer])
    assert trained(tok, enc) == f"spam{family.closer}"
    assert "WIN a free\nprize now" in tok.decode(enc.input_ids)


def test_an_answer_before_any_question_is_refused(family: Family, tok: Any) -> None:
    with pytest.raises(ConfigError, match="starts with the assistant's answer"):
        encode_chat(tok, [{"role": "assistant", "content": "spam"}, FIRST,
                          {"role": "assistant", "content": "ham"}])


def test_the_legacy_function_call_is_trained_as_a_tool_call() -> None:
    family = FAMILIES["chatml"]
    tok = tokenizer(family)
    messages = [{"role": "user", "content": "what is the weather in Paris"},
                {"role": "assistant", "content": None,
                 "function_call": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
                {"role": "function", "name": "get_weather", "content": "sunny, 21 degrees"},
                {"role": "assistant", "content": "sunny"}]
    text = trained(tok, encode_chat(tok, messages, tools=TOOLS))
    assert '"get_weather"' in text and '{"city": "Paris"}' in text
    assert text.endswith("sunny<|im_end|>") and "21 degrees" not in text
    gemma = tokenizer(FAMILIES["gemma"])
    with pytest.raises(ConfigError, match="has no place for 'tool_calls'"):
        encode_chat(gemma, messages)


def test_tool_calls_are_part_of_the_answer_and_tool_results_are_not(family: Family,
                                                                     tok: Any) -> None:
    messages = [{"role": "user", "content": "what is the weather in Paris"}, CALL, TOOL_REPLY,
                {"role": "assistant", "content": "sunny"}]
    if not family.tools:
        with pytest.raises(ConfigError, match=f"chat template of {family.name} has no place "
                                              "for 'tools'"):
            encode_chat(tok, messages, tools=TOOLS, template=Template(tok, family.name))
        return
    enc = encode_chat(tok, messages, tools=TOOLS)
    text = trained(tok, enc)
    assert '"get_weather"' in text and '{"city": "Paris"}' in text  # arguments as an object
    assert text.endswith(f"sunny{family.closer}") and text.count(family.closer) == 2
    assert "21 degrees" not in text and "weather in Paris" not in text
    assert "21 degrees" in tok.decode(enc.input_ids)


def test_a_tiny_model_of_the_family_trains_on_the_mask(family: Family, tok: Any) -> None:
    import torch

    net = model(family, len(tok))
    enc = encode_chat(tok, conversation(family, weight=1))
    out = net(input_ids=torch.tensor([enc.input_ids]), labels=torch.tensor([enc.labels]))
    assert torch.isfinite(out.loss)
    out.loss.backward()
    assert net.get_input_embeddings().weight.grad is not None


def test_generation_markers_give_the_same_mask() -> None:
    family = FAMILIES["chatml"]
    plain, marked = tokenizer(family), tokenizer(family, CHATML_MARKED)
    assert Template(marked, "marked").marked and not Template(plain, "plain").marked
    for weight in (0, 1):
        messages = conversation(family, weight=weight)
        assert encode_chat(marked, messages) == encode_chat(plain, messages)


@pytest.mark.parametrize(("template", "message"), [
    ("{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}",
     "does not close an assistant turn with anything"),
    ("{% for m in messages %}<|im_start|>{{ m.content }}<|im_end|>{% endfor %}"
     "{% if add_generation_prompt %}<|im_start|>{% endif %}{{ messages | length }}",
     "renders a conversation differently from its beginning"),
    ("hello", "does not show the messages it is given"),
])
def test_a_template_that_cannot_be_masked_is_refused_by_name(template: str,
                                                            message: str) -> None:
    tok = tokenizer(FAMILIES["chatml"], template)
    with pytest.raises(ConfigError, match=message) as err:
        encode_chat(tok, conversation(FAMILIES["chatml"], weight=1),
                    template=Template(tok, "acme/odd-7b"))
    assert "acme/odd-7b" in err.value.render()


def test_what_a_template_cannot_render_is_a_clear_error() -> None:
    tok = tokenizer(FAMILIES["gemma"])
    with pytest.raises(ConfigError, match="chat template of gemma-tiny cannot render this "
                                          "conversation: System role not supported"):
        encode_chat(tok, [SYSTEM, FIRST, {"role": "assistant", "content": "spam"}],
                    template=Template(tok, "gemma-tiny"))
    bare = tokenizer(FAMILIES["gemma"])
    bare.chat_template = None
    with pytest.raises(ConfigError, match="no-template has no chat template"):
        Template(bare, "no-template")


def test_a_training_file_the_template_cannot_render_names_its_line() -> None:
    from ftlens.errors import DataError
    from ftlens.io.chat_dataset import Conversation
    from ftlens.train.data import encode_all

    tok = tokenizer(FAMILIES["gemma"])
    convs = [Conversation(1, [FIRST, {"role": "assistant", "content": "spam"}], "spam"),
             Conversation(2, [FIRST, CALL, TOOL_REPLY, {"role": "assistant", "content": "ok"}],
                          "ok", tools=TOOLS)]
    with pytest.raises(DataError) as err:
        encode_all(tok, convs, max_length=512, path="train.jsonl", model="gemma-tiny")
    assert err.value.line == 2 and "gemma-tiny has no place for 'tools'" in err.value.render()
