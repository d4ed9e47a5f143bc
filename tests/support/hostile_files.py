"""The hostile files of tests/fixtures/hostile/ (see README.md there), byte for byte.

Every file is spelled out here, so that what a file holds is read in one place and the bytes an
editor would "fix" (a UTF-16 or latin-1 file, a byte-order mark, NUL bytes) are written by code.
``python -m tests.support.hostile_files`` writes them again; tests/io/test_hostile_audit.py
checks that the committed files are these. Files too big to commit (GENERATED) are written by
the tests into their temporary folder.
"""

from __future__ import annotations

import base64
import codecs
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parents[1] / "fixtures" / "hostile"
SYSTEM = {"role": "system", "content": "Classify the SMS as spam or ham."}


def _line(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)


def chat(text: str, label: str, *extra: dict[str, Any]) -> dict[str, Any]:
    return {"messages": [SYSTEM, {"role": "user", "content": text},
                         {"role": "assistant", "content": label}, *extra]}


GOOD = [_line(chat(t, y)) for t, y in [
    ("WIN a free cruise, reply YES now", "spam"), ("are we still on for lunch?", "ham"),
    ("URGENT: your account is locked, click here", "spam"), ("see you at 6", "ham")]]
CALL = {"id": "call_1", "type": "function",
        "function": {"name": "lookup", "arguments": '{"number": "5550100"}'}}


def _assistant_calls(calls: Any) -> str:
    return _line({"messages": [SYSTEM, {"role": "user", "content": "who is 5550100?"},
                               {"role": "assistant", "content": None, "tool_calls": calls}]})


def _tool_reply(reply: dict[str, Any]) -> str:
    return _line({"messages": [
        SYSTEM, {"role": "user", "content": "who is 5550100?"},
        {"role": "assistant", "content": None, "tool_calls": [CALL]},
        {"role": "tool", "content": "a known spammer", **reply},
        {"role": "assistant", "content": "spam"}]})


def _user_parts(parts: list[Any]) -> str:
    return _line({"messages": [{"role": "user", "content": parts},
                               {"role": "assistant", "content": "spam"}]})


IMAGE = {"type": "image_url", "image_url": {"url": "https://example.com/sms.png"}}
DATA_IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
TEXT = {"type": "text", "text": "is this screenshot spam?"}
PAIR = {"input": {"messages": [SYSTEM, {"role": "user", "content": "WIN a prize now"}]},
        "preferred_output": [{"role": "assistant", "content": "spam"}],
        "non_preferred_output": [{"role": "assistant", "content": "ham"}]}


TRUNCATED = GOOD[1][:-9]  # a line cut short
LATIN1 = _line(chat("café à 6h ?", "ham"))  # written as latin-1
NUL_LINE = GOOD[1].replace("lunch", "lun\x00ch")
HUGE = 3_000_000  # characters of one huge line: too big to commit, written at test time
HUGE_LINE = _line(chat("free money " * (HUGE // 11), "spam"))


def lines(*middle: str, before: int = 1, after: int = 1) -> bytes:
    """``before`` good lines, then ``middle``, then ``after`` good lines, as UTF-8 JSONL."""
    rows = [*GOOD[:before], *middle, *GOOD[before:before + after]]
    return "".join(r + "\n" for r in rows).encode()


AUDIT: dict[str, bytes] = {
    # tool calls, as OpenAI's upload checks them
    "tool_calls_on_user.jsonl": lines(_line({"messages": [
        {"role": "user", "content": "who is 5550100?", "tool_calls": [CALL]},
        {"role": "assistant", "content": "spam"}]})),
    "tool_calls_number.jsonl": lines(_assistant_calls(5)),
    "tool_calls_string.jsonl": lines(_assistant_calls("lookup(5550100)")),
    "tool_calls_list_of_number.jsonl": lines(_assistant_calls([1])),
    "tool_call_function_null.jsonl": lines(_assistant_calls([{**CALL, "function": None}])),
    "tool_call_arguments_not_json.jsonl": lines(_assistant_calls(
        [{**CALL, "function": {"name": "lookup", "arguments": "{not json"}}])),
    "tool_message_without_id.jsonl": lines(_tool_reply({}), before=2),
    "tool_message_unknown_id.jsonl": lines(_tool_reply({"tool_call_id": "call_9"})),
    "tools_not_list.jsonl": lines(_line({**chat("hi", "ham"), "tools": {"name": "lookup"}})),
    "tools_entry_not_function.jsonl": lines(_line(
        {**chat("hi", "ham"), "tools": [{"type": "retrieval"}]})),
    "tool_call_valid.jsonl": lines(_tool_reply({"tool_call_id": "call_1"})),
    "tools_valid.jsonl": lines(_line({**chat("who is 5550100?", "spam"), "tools": [
        {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]})),
    # content parts and images
    "text_part_without_text.jsonl": lines(_user_parts([{"type": "text"}])),
    "image_parts_valid.jsonl": lines(_user_parts([TEXT, IMAGE, DATA_IMAGE])),
    "too_many_images.jsonl": lines(_user_parts([TEXT, *[IMAGE] * 11])),
    "image_bad_url.jsonl": lines(_user_parts(
        [TEXT, {"type": "image_url", "image_url": {"url": "file:///home/me/sms.png"}}])),
    # the shape of a line and its messages
    "messages_null.jsonl": lines('{"messages": null}'),
    "messages_string.jsonl": lines('{"messages": "hello, is this spam?"}'),
    "content_number.jsonl": lines(_line({"messages": [
        SYSTEM, {"role": "user", "content": 42}, {"role": "assistant", "content": "ham"}]})),
    "role_number.jsonl": lines(_line({"messages": [
        {"role": 1, "content": "hi"}, {"role": "assistant", "content": "ham"}]})),
    "weight_one_float.jsonl": lines(_line({"messages": [
        SYSTEM, {"role": "user", "content": "free ringtones!"},
        {"role": "assistant", "content": "spam", "weight": 1.0}]})),
    "line_not_object.jsonl": lines('["user", "hi", "assistant", "ham"]'),
    "prompt_completion.jsonl": lines('{"prompt": "free ringtones!", "completion": "spam"}'),
    "truncated_line.jsonl": lines(TRUNCATED, before=2),
    "blank_line.jsonl": lines("", before=2),
    # preference pairs (DPO)
    "preference_valid.jsonl": "".join(_line(PAIR) + "\n" for _ in range(2)).encode(),
    "preference_missing_non_preferred.jsonl": (
        _line(PAIR) + "\n" + _line({k: v for k, v in PAIR.items()
                                    if k != "non_preferred_output"}) + "\n").encode(),
    # files that are not UTF-8 JSON lines at all, or bytes that break them
    "json_array.json": json.dumps([json.loads(g) for g in GOOD], indent=2).encode(),
    "table.csv": b"text,label\nWIN a free cruise,spam\nsee you at 6,ham\nfree ringtones,spam\n",
    "utf16_bom.jsonl": codecs.BOM_UTF16_LE + lines(before=3, after=0).decode().encode(
        "utf-16-le"),
    "latin1.jsonl": lines(LATIN1, before=1).decode().encode("latin-1"),
    "bom_utf8.jsonl": codecs.BOM_UTF8 + lines(before=3, after=0),
    "nul_in_line.jsonl": lines(NUL_LINE, before=2),
    "nul_padding.jsonl": lines(before=3, after=0) + b"\x00" * 64,
    "nul_padding_short.jsonl": lines(before=1, after=0) + b"\x00" * 64,  # within the sniff
    "nul_file.jsonl": b"\x00" * 4096,  # space a crash left unwritten
    "utf16_no_bom.jsonl": lines(before=3, after=0).decode().encode("utf-16-le"),
    "empty.jsonl": b"",
}
def preds(*rows: dict[str, Any] | str) -> bytes:
    """Predictions as JSONL: a row given as text is written as it is."""
    return "".join((r if isinstance(r, str) else _line(r)) + "\n" for r in rows).encode()


P_SPAM = {"label": "spam", "prediction": "spam", "score": 0.91}
P_HAM = {"label": "ham", "prediction": "ham", "score": 0.12}
P_MISS = {"label": "spam", "prediction": "ham", "score": 0.35}
FRAUD = [{"label": "fraud", "prediction": "fraud"}, {"label": "legit", "prediction": "legit"},
         {"label": "fraud", "prediction": "legit"}, {"label": "legit", "prediction": "legit"}]
P_LATIN1 = _line({"label": "ham", "prediction": "jamón", "score": 0.2})  # written as latin-1
METRICS: dict[str, bytes] = {
    "truth_null.jsonl": preds(P_SPAM, {"label": None, "prediction": "spam", "score": 0.8}),
    "truth_empty.jsonl": preds(P_SPAM, P_HAM, {"label": "", "prediction": "ham", "score": 0.2}),
    "truth_case_space.jsonl": preds(
        {"label": "ok", "prediction": "ok"}, {"label": "OK ", "prediction": "OK"},
        {"label": "ok", "prediction": "bad"}, {"label": "bad", "prediction": "bad"},
        {"label": "bad", "prediction": "Ok"}),
    "score_above_one.jsonl": preds(P_SPAM, {**P_HAM, "score": 1.7}, P_MISS),
    "prob_negative.jsonl": preds(
        {"label": "spam", "prediction": "spam", "probs": {"spam": 0.9, "ham": 0.1}},
        {"label": "ham", "prediction": "ham", "probs": {"spam": -3, "ham": 4}}),
    "fraud.jsonl": preds(*FRAUD),
    "single_class.jsonl": preds(*[{"label": "ham", "prediction": "ham"}] * 9,
                                {"label": "ham", "prediction": "spam"}),
    "array.json": json.dumps([P_SPAM, P_HAM, P_MISS], indent=2).encode(),
    "array_one_line.json": json.dumps([P_SPAM, P_HAM, P_MISS]).encode() + b"\n",
    "csv_named_jsonl.jsonl": b"label,prediction,score\nspam,spam,0.91\nham,ham,0.12\n",
    "jsonl_named_csv.csv": preds(P_SPAM, P_HAM),
    "utf16.jsonl": codecs.BOM_UTF16_LE + preds(P_SPAM, P_HAM).decode().encode("utf-16-le"),
    "truncated.jsonl": preds(P_SPAM, P_HAM, _line(P_MISS)[:-12]),
    "empty.jsonl": b"",
    "latin1.jsonl": preds(P_SPAM, P_LATIN1).decode().encode("latin-1"),
    "no_truth_field.jsonl": preds(P_SPAM, {"prediction": "ham", "score": 0.2}),
    "prediction_object.jsonl": preds(P_SPAM, P_HAM, {**P_MISS, "prediction": {"text": "ham"}}),
    "line_string.jsonl": preds(P_SPAM, '"ham"'),
}
RESULT_HEADER = "step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy\n"
LOSSES = [2.31, 1.87, 1.52, 1.33, 1.18, 1.02, 0.95, 0.88, 0.84, 0.81, 0.79, 0.78]


def result_csv(losses: list[Any] = LOSSES, steps: list[Any] | None = None) -> str:
    """OpenAI's result file: a validation loss every fourth step."""
    steps = list(range(1, len(losses) + 1)) if steps is None else steps
    return RESULT_HEADER + "".join(
        f"{s},{loss},0.5,{round(LOSSES[i] * 1.1, 3) if i % 4 == 3 else ''},\n"
        for i, (s, loss) in enumerate(zip(steps, losses, strict=True)))


def table(header: str, rows: list[tuple[Any, ...]]) -> bytes:
    return (header + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows)).encode()


def events(losses: list[float]) -> list[dict[str, Any]]:
    return [{"object": "fine_tuning.job.event", "id": f"ftevent-{i}", "created_at": 1722000000 + i,
             "level": "info", "message": f"Step {i}/{len(losses)}: training loss={loss}",
             "data": {"step": i, "train_loss": loss, "total_steps": len(losses)},
             "type": "metrics"} for i, loss in enumerate(losses, 1)]


RESULT_B64 = base64.b64encode(result_csv().encode()).decode()
CURVES: dict[str, bytes] = {
    "empty.csv": b"",
    "truncated.json": json.dumps({"object": "list", "data": events(LOSSES), "has_more": False},
                                 indent=2).encode()[:-200],
    "header_without_step.csv": table("iteration,loss,val_loss",
                                     [(i, loss, "") for i, loss in enumerate(LOSSES, 1)]),
    "header_without_loss.csv": table("step,lr,grad_norm", [(i, 1e-4, 0.5) for i in range(1, 6)]),
    "loss_not_a_number.csv": result_csv([*LOSSES[:3], "abc", *LOSSES[4:]]).encode(),
    "loss_nan.csv": result_csv([*LOSSES[:6], "nan", "nan", *LOSSES[8:]]).encode(),
    "loss_inf.csv": result_csv([*LOSSES[:5], "inf", *LOSSES[6:]]).encode(),
    "step_negative.csv": table("step,train_loss", [(-1, 2.3), (0, 2.1), (1, 1.9)]),
    "step_duplicate.csv": table("step,train_loss", [(1, 2.3), (2, 2.1), (2, 1.4), (3, 1.9),
                                                   (4, 1.7)]),
    "steps_restart.csv": table("step,train_loss", [(s, round(2.5 - 0.2 * s, 2))
                                                  for _ in range(2) for s in range(1, 6)]),
    "latin1.csv": table("step,train_loss,note", [(1, 2.3, "début"), (2, 2.1, "")]
                        ).decode().encode("latin-1"),
    "utf16.csv": codecs.BOM_UTF16_LE + result_csv().encode("utf-16-le"),
    "records_array.json": json.dumps([{"step": i, "train_loss": loss}
                                      for i, loss in enumerate(LOSSES, 1)], indent=2).encode(),
    "events_array.json": json.dumps(events(LOSSES), indent=2).encode(),
    "events_line_not_object.jsonl": "".join(
        _line(e) + "\n" for e in events(LOSSES[:3])).encode() + b'["step", 4]\n',
    "array_of_numbers.json": json.dumps(LOSSES).encode(),
    "log_history_not_list.json": b'{\n  "max_steps": 12,\n  "log_history": "none"\n}\n',
    "result_base64_truncated.b64": RESULT_B64[:-7].encode(),
    "result_base64_corrupt.b64": (RESULT_B64[:40] + "!*" + RESULT_B64[40:]).encode(),
}
TABLES = {"audit": AUDIT, "metrics": METRICS, "curves": CURVES}
GENERATED: dict[str, Callable[[], bytes]] = {
    # a line of several MB: read whole, its tokens counted (and over the context)
    "huge_line.jsonl": lambda: lines(HUGE_LINE),
    # the same line cut short: the message quotes a column, never the line
    "huge_line_cut.jsonl": lambda: lines(HUGE_LINE[:-5], before=2),
    # curves: one CSV cell of several MB (no table at all), and a huge message event
    "huge_cell.csv": lambda: b"x" * HUGE + b"\n1\n",
    "huge_event.jsonl": lambda: "".join(_line(e) + "\n" for e in [
        {"object": "fine_tuning.job.event", "type": "message", "data": {},
         "message": "m" * HUGE}, *events(LOSSES)]).encode(),
}


def generated(name: str, folder: Path) -> Path:
    """A generated file of the tables (see GENERATED), written into ``folder``."""
    path = folder / name
    path.write_bytes(GENERATED[name]())
    return path


def write() -> None:
    for table, files in TABLES.items():
        folder = HERE / table
        folder.mkdir(exist_ok=True)
        for name, data in files.items():
            (folder / name).write_bytes(data)


if __name__ == "__main__":
    write()
