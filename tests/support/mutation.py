"""Mutations of valid input files, for the property tests that feed them to every reader
(tests/io/test_mutation_*.py, tests/server/test_mutation_upload.py), and the tally of the cases
they judge and the refusals they see.

A mutation is a hypothesis-drawn ``(op, param)``: ``op`` names what is done, ``param`` (an
integer) where and with what, through a ``random.Random(param)`` — so hypothesis shrinks a
failure towards fewer, simpler ops at the first places. Value ops change a parsed JSON line
(retype, drop or rename a key, duplicate a key, nest a value, huge or odd values, swap two
values); byte ops change its bytes (truncate, flip, insert, delete, odd bytes, re-encode, replace
the line). File ops change a whole file (truncate, flip or insert anywhere, swap, drop or repeat
lines, blank and garbage lines, UTF-16/32, latin1, BOM, CRLF, as a JSON array or CSV).

A line mutation never writes a newline byte (a ``\\n`` it makes becomes a space), so a file of
mutated lines has exactly one line per case; a file op may do anything.
"""

from __future__ import annotations

import base64
import copy
import json
import random
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

_SETTINGS = settings(derandomize=True, deadline=None, database=None,
                     suppress_health_check=list(HealthCheck))


def mutation(max_examples: int) -> settings:
    """The settings of a mutation test: deterministic (the same cases in every run), no
    deadline, no example database."""
    return settings(_SETTINGS, max_examples=max_examples)

VALUE_OPS = ("retype", "drop_key", "rename_key", "dup_key", "nest", "huge", "odd_value", "swap")
BYTE_OPS = ("truncate", "flip", "insert", "delete", "odd_byte", "encode", "replace_line",
            "wrap_line")
FILE_OPS = ("truncate", "flip", "insert", "delete", "swap_lines", "drop_line", "repeat_line",
            "blank_lines", "garbage_line", "encode", "crlf", "no_final_newline", "join_lines",
            "json_array", "csv", "base64", "empty", "whitespace", "nul_fill", "reverse_lines")

_PARAM = st.integers(min_value=0, max_value=2**32 - 1)
#: one op on a line: mostly value ops (they keep the line JSON, so its rules are reached)
line_op = st.tuples(st.sampled_from(VALUE_OPS + VALUE_OPS + BYTE_OPS), _PARAM)
#: a line's mutations: none (the seed as it is) to three
line_ops = st.lists(line_op, max_size=3)
file_op = st.tuples(st.sampled_from(FILE_OPS), _PARAM)


def _unpack(code: int, min_ops: int) -> tuple[int, list[tuple[str, int]]]:
    rng = random.Random(code)
    n = min_ops + rng.randrange(4 - min_ops)
    return code, [(rng.choice(_WEIGHTED), rng.getrandbits(32)) for _ in range(n)]


_WEIGHTED = VALUE_OPS + VALUE_OPS + BYTE_OPS


def packed(min_ops: int = 0) -> st.SearchStrategy[tuple[int, list[tuple[str, int]]]]:
    """``(code, ops)``: ``min_ops`` to three ops (as ``line_ops`` draws them) unpacked from
    one drawn integer ``code``, which also picks the case's seed and place (``code % n``...).
    One draw a case instead of about ten: the tests that judge tens of thousands of cases
    draw them this way (hypothesis still shrinks the list of cases, and each code towards 0)."""
    return st.integers(0, 2**63 - 1).map(lambda code: _unpack(code, min_ops))


# --- values -----------------------------------------------------------------------------------

_RAW = "\ue000raw{}\ue000"  # a placeholder string, replaced by raw JSON text after dumping
_DUP = "\ue001dup{}\ue001"  # a placeholder key, replaced by a key its object already has


def _nodes(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """(path, node) of every node of a JSON value, the value itself first."""
    stack = [(path, value)]
    while stack:
        path, node = stack.pop()
        yield path, node
        if isinstance(node, dict):
            stack.extend(((*path, k), v) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend(((*path, i), v) for i, v in enumerate(node))


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


def _set(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    """``value`` with the node at ``path`` replaced (the root itself when ``path`` is empty)."""
    if not path:
        return new
    _get(value, path[:-1])[path[-1]] = new
    return value


_TYPES: list[Any] = [None, True, False, 0, -1, 2, 1.5, -0.0, "", "x", "assistant", [], {},
                     [None], {"role": "user"}, {"content": "hi"}, [{"type": "text"}]]
_ODD_STRINGS = ["\u2028", "a\u2029b", "\x00", "\ud800", "\udfff\ud800", "\x85", "\r", "\t\n",
                "\x0b\x0c\x1c\x1d\x1e", "é", "café ☕", "😀" * 3, "\u202eevil", "\ufeff",
                " ", "  padded  ", "[/]", "[bold]", "{}", "null", "NaN", "spam", "SPAM",
                "ham\u200b", "\\", '"', "' OR 1=1 --", "<script>", "x" * 300]
_ODD_NUMBERS: list[Any] = [float("nan"), float("inf"), float("-inf"), 1e308, -1e308, 5e-324,
                           2**63, 2**64, -(2**63) - 1, 1.0, 0.5, 1.0000001, -0.0, 10**20]


def _huge(rng: random.Random, raws: list[str]) -> Any:
    """A huge value: a long string, an extreme number, deep nesting, a long list or wide
    object, or a number too big for a double (raw JSON text)."""
    kind = rng.randrange(9)
    if kind == 0:
        return rng.choice("xé😀 ") * rng.choice([1_000, 20_000, 70_000, 140_000])
    if kind == 1:
        return rng.choice([1e308, -1e308, 5e-324, 1.7976931348623157e308, 2**1000])
    if kind == 2:  # nesting past what the JSON parsers go to, or just under it
        depth = rng.choice([200, 1000, 1030, 5000])
        raws.append("[" * depth + "]" * depth)
        return _RAW.format(len(raws) - 1)
    if kind == 3:
        raws.append(rng.choice(["1" + "0" * 400, "-" + "9" * 50, "1e400", "-1e999", "1E-99999",
                                "0." + "0" * 500 + "1"]))
        return _RAW.format(len(raws) - 1)
    if kind == 4:
        return [rng.choice([0, "a", None])] * rng.choice([1_000, 10_000])
    if kind == 5:
        return {f"k{i}": i for i in range(rng.choice([100, 2_000]))}
    if kind == 6:  # deep, but through objects
        depth = rng.choice([100, 900, 1100])
        raws.append('{"a":' * depth + "1" + "}" * depth)
        return _RAW.format(len(raws) - 1)
    if kind == 7:  # raw JSON a strict parser refuses
        raws.append(rng.choice(["NaN", "Infinity", "-Infinity", "undefined", "0x10", "01",
                                "+1", ".5", "1.", "'single'", "True", "None"]))
        return _RAW.format(len(raws) - 1)
    return 2 ** rng.choice([64, 200, 3000])


def _dicts(value: Any) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    return [(p, n) for p, n in _nodes(value) if isinstance(n, dict) and n]


def mutate_value(value: Any, op: str, rng: random.Random, raws: list[str],
                 dups: list[str]) -> Any:
    """``value`` (a deep copy, already) after one value op."""
    nodes = list(_nodes(value))
    path, node = rng.choice(nodes)
    if op == "retype":
        others = [t for t in _TYPES if type(t) is not type(node) or t != node]
        return _set(value, path, copy.deepcopy(rng.choice(others)))
    if op in ("drop_key", "rename_key", "dup_key"):
        dicts = _dicts(value)
        if not dicts:
            return value
        _, d = rng.choice(dicts)
        key = rng.choice(list(d))
        if op == "drop_key":
            del d[key]
        elif op == "rename_key":
            new = rng.choice([key.upper(), key.title(), f" {key}", f"{key} ", key[:-1], "",
                              "role", "content", "weight", "messages", "label", "step",
                              "score", "probs", "prediction", "train_loss", "data",
                              f"{key}\u200b", "é"])
            d[new] = d.pop(key)
        else:  # the same key again, with another value, before or after the first
            dups.append(key)
            d[_DUP.format(len(dups) - 1)] = copy.deepcopy(rng.choice([*_TYPES, d[key]]))
            if rng.random() < 0.5:  # the duplicate first
                for k in [k for k in d if k != _DUP.format(len(dups) - 1)]:
                    d[k] = d.pop(k)
        return value
    if op == "nest":
        return _set(value, path, rng.choice([[node], {"value": node}, [[node]], {"": node},
                                             {"content": node}, [node, node]]))
    if op == "huge":
        return _set(value, path, _huge(rng, raws))
    if op == "odd_value":
        pool = _ODD_STRINGS if isinstance(node, str) or rng.random() < 0.5 else _ODD_NUMBERS
        odd = rng.choice(pool)
        if isinstance(node, str) and isinstance(odd, str) and rng.random() < 0.5:
            odd = node + odd if rng.random() < 0.5 else odd + node
        return _set(value, path, odd)
    if op == "swap":  # another part of the same value in this place
        _, other = rng.choice(nodes)
        return _set(value, path, copy.deepcopy(other))
    raise ValueError(op)


def dump(value: Any, rng: random.Random, raws: Sequence[str] = (),
         dups: Sequence[str] = ()) -> bytes:
    """One JSON line, its spacing and escaping chosen by ``rng`` (a lone surrogate is written
    as the bytes Python's surrogatepass gives: invalid UTF-8)."""
    ascii_only = rng.random() < 0.3
    seps = rng.choice([(", ", ": "), (",", ":"), (" , ", " : ")])
    try:
        text = json.dumps(value, ensure_ascii=ascii_only, separators=seps, allow_nan=True)
    except (ValueError, RecursionError):
        text = json.dumps(str(value)[:1000])
    for i, raw in enumerate(raws):
        text = text.replace(json.dumps(_RAW.format(i), ensure_ascii=ascii_only), raw)
    for i, key in enumerate(dups):
        text = text.replace(json.dumps(_DUP.format(i), ensure_ascii=ascii_only),
                            json.dumps(key, ensure_ascii=ascii_only))
    return text.encode("utf-8", "surrogatepass")


# --- bytes ------------------------------------------------------------------------------------

_ODD_BYTES = [b"\x00", b"\xff", b"\xc3", b"\xe2\x80", b"\xed\xa0\x80", b"\xef\xbb\xbf", b'"',
              b"{", b"}", b"[", b"]", b",", b":", b"\\", b"\r", b"\t", b" ", b"\x85",
              "\u2028".encode(), "\u2029".encode(), b"\x0b", b"\x0c", b"\x1c", b"\x1e",
              b"\xc2\x85", b"'", b"#", b"\x7f", b"\x80", b"\xf4\x90\x80\x80"]
_ENCODINGS = ["latin-1", "cp1252", "utf-16-le", "utf-16-be", "utf-16", "utf-32", "utf-8-sig",
              "ascii", "utf-7", "cp037"]
_LINES = [b"", b" ", b"\t", b"\r", b"   \r", b"[]", b"{}", b"null", b"42", b'"text"', b"true",
          b"[{}]", b'{"messages": []}', b"# a comment", b"//", b"label,prediction", b"<html>",
          b"\x00\x00\x00\x00", b"\xff\xfe{", b"step,train_loss", b"{", b"}", b"{{}}", b"1,2,3",
          b'{"a": 1}{"b": 2}', b"\x1a"]


def encode(data: bytes, name: str) -> bytes:
    text = data.decode("utf-8", "surrogateescape")
    return text.encode(name, "replace")


def mutate_bytes(line: bytes, op: str, rng: random.Random) -> bytes:
    at = rng.randrange(len(line) + 1)
    if op == "truncate":
        return line[:at]
    if op == "flip" and line:
        i = min(at, len(line) - 1)
        return line[:i] + bytes([line[i] ^ (1 << rng.randrange(8))]) + line[i + 1:]
    if op == "insert":
        stuff = rng.choice([bytes([rng.randrange(256)]), rng.randbytes(rng.randrange(1, 9)),
                            rng.choice(_ODD_BYTES)])
        return line[:at] + stuff + line[at:]
    if op == "delete":
        return line[:at] + line[at + rng.randrange(1, 40):]
    if op == "odd_byte" and line:
        i = min(at, len(line) - 1)
        return line[:i] + rng.choice(_ODD_BYTES) + line[i + 1:]
    if op == "encode":
        return encode(line, rng.choice(_ENCODINGS))
    if op == "replace_line":
        return rng.choice([*_LINES, rng.randbytes(rng.randrange(1, 60))])
    if op == "wrap_line":  # around the line: two values, spaces, a CR, a BOM, a comma
        return rng.choice([line + b" " + line, b"  " + line + b"  ", line + b"\r", b"\t" + line,
                           b"\xef\xbb\xbf" + line, line + b",", b"[" + line + b"]",
                           line + b"\x00", line + b" // note", b"data: " + line])
    return line


def mutate_line(seed: Any, ops: Sequence[tuple[str, int]]) -> bytes:
    """A seed (a parsed JSON line) after ``ops``: its value ops (in order) on a copy, then it
    dumped, then its byte ops (in order); never a newline byte."""
    value = copy.deepcopy(seed)
    raws: list[str] = []
    dups: list[str] = []
    rng = random.Random(sum(p for _, p in ops) if ops else 0)
    for op, param in ops:
        if op in VALUE_OPS:
            value = mutate_value(value, op, random.Random(param), raws, dups)
    line = dump(value, rng, raws, dups)
    for op, param in ops:
        if op in BYTE_OPS:
            line = mutate_bytes(line, op, random.Random(param))
    return line.replace(b"\n", b" ")


# --- CSV rows ---------------------------------------------------------------------------------

_ODD_CELLS = ["", " ", "nan", "NaN", "inf", "-inf", "1e999", "-0.1", "1.5", "2", "0", "1",
              "true", "null", "None", "[]", '{"a": 1}', "1,000", "0x1A", "½", "٣", "1_000",
              "  0.5  ", "0.5.5", "--1", "1e-400", "9" * 400, "spam", "SPAM", "Spam ", "é"]


def _cell(text: str) -> str:
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\r\n\t') else text


def mutate_csv_row(row: str, ops: Sequence[tuple[str, int]], delimiter: str = ",") -> bytes:
    """A CSV row (without its newline) after ``ops``: value ops change its cells (retype: an
    odd cell; drop_key: one cell fewer; dup_key: one more; nest: a quoted or bracketed cell;
    huge: a cell over the csv module's field limit, or a huge number; odd_value; rename_key:
    a cell's case; swap: two cells), then byte ops its bytes; never a newline byte."""
    cells = row.split(delimiter)
    for op, param in ops:
        if op not in VALUE_OPS:
            continue
        rng = random.Random(param)
        i = rng.randrange(len(cells))
        if op == "retype":
            cells[i] = rng.choice(_ODD_CELLS)
        elif op == "drop_key" and len(cells) > 1:
            del cells[i]
        elif op == "dup_key":
            cells.insert(i, cells[i])
        elif op == "nest":
            cells[i] = rng.choice(['"' + cells[i] + '"', "[" + cells[i] + "]", '"' + cells[i],
                                   cells[i] + '"', '"' + cells[i] + '""x"'])
        elif op == "huge":
            cells[i] = rng.choice(["x" * 140_000, "1" + "0" * 400, "1e308", "-1e308", "5e-324",
                                   "0." + "0" * 300 + "1", "é" * 70_000])
        elif op == "odd_value":
            cells[i] = _cell(rng.choice(_ODD_STRINGS + [str(x) for x in _ODD_NUMBERS]))
        elif op == "rename_key":
            cells[i] = rng.choice([cells[i].upper(), cells[i].title(), f" {cells[i]}",
                                   cells[i][:-1], "score", "label", "p_spam", "step"])
        elif op == "swap":
            j = rng.randrange(len(cells))
            cells[i], cells[j] = cells[j], cells[i]
    line = delimiter.join(cells).encode("utf-8", "surrogatepass")
    for op, param in ops:
        if op in BYTE_OPS:
            line = mutate_bytes(line, op, random.Random(param))
    return line.replace(b"\n", b" ")


# --- files ------------------------------------------------------------------------------------

def n_lines(data: bytes) -> int:
    """The file's lines, however its text is split (a generous bound for a named line)."""
    return max(len(data.split(b"\n")), len(data.decode("utf-8", "replace").splitlines()))


def _split(data: bytes) -> list[bytes]:
    lines = data.split(b"\n")
    return lines[:-1] if lines and lines[-1] == b"" else lines


def _join(lines: Sequence[bytes]) -> bytes:
    return b"".join(line + b"\n" for line in lines)


def _as_csv(lines: Sequence[bytes]) -> bytes:
    """The file's objects as a CSV table (their keys the header); the lines as they are where
    none is an object."""
    rows = []
    for line in lines:
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict):
            rows.append(obj)
    if not rows:
        return _join(lines)
    header = list(dict.fromkeys(k for r in rows for k in r))
    def cell(v: Any) -> str:
        text = v if isinstance(v, str) else json.dumps(v)
        return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\n') else text
    out = [",".join(cell(h) for h in header)]
    out += [",".join(cell(r.get(h, "")) for h in header) for r in rows]
    return "\n".join(out).encode("utf-8", "surrogatepass") + b"\n"


def _as_array(lines: Sequence[bytes], rng: random.Random) -> bytes:
    objs = []
    for line in lines:
        try:
            objs.append(json.loads(line))
        except ValueError:
            objs.append(line.decode("utf-8", "replace"))
    return json.dumps(objs, indent=rng.choice([None, 2, 4]), allow_nan=True).encode()


def mutate_file(data: bytes, op: str, param: int) -> bytes:
    """A whole file after one file op."""
    rng = random.Random(param)
    lines = _split(data)
    at = rng.randrange(len(data) + 1)
    n = len(lines)
    if op in ("truncate", "flip", "insert", "delete"):
        return mutate_bytes(data, op, rng) if op != "truncate" else data[:at]
    if op == "swap_lines" and n >= 2:
        i, j = rng.sample(range(n), 2)
        lines[i], lines[j] = lines[j], lines[i]
        return _join(lines)
    if op == "drop_line" and n:
        del lines[rng.randrange(n)]
        return _join(lines)
    if op == "repeat_line" and n:
        i = rng.randrange(n)
        lines[i:i] = [lines[i]] * rng.randrange(1, 4)
        return _join(lines)
    if op == "blank_lines":
        for _ in range(rng.randrange(1, 4)):
            lines.insert(rng.randrange(n + 1), rng.choice([b"", b" ", b"\r", b"\t \t"]))
        return _join(lines)
    if op == "garbage_line":
        lines.insert(rng.randrange(n + 1), rng.choice([*_LINES, rng.randbytes(20)]))
        return _join(lines)
    if op == "encode":
        return encode(data, rng.choice(_ENCODINGS))
    if op == "crlf":
        return data.replace(b"\n", b"\r\n") if rng.random() < 0.8 else data.replace(b"\n", b"\r")
    if op == "no_final_newline":
        return data.rstrip(b"\n")
    if op == "join_lines":
        return data.replace(b"\n", rng.choice([b"", b" ", b","]))
    if op == "json_array":
        return _as_array(lines, rng)
    if op == "csv":
        return _as_csv(lines)
    if op == "base64":
        return base64.b64encode(data)
    if op == "empty":
        return rng.choice([b"", b"\n", b"\n\n\n"])
    if op == "whitespace":
        return rng.choice([b"   ", b"\r\n\r\n", b"\t\n \n", b"\xef\xbb\xbf", b"\xef\xbb\xbf\n"])
    if op == "nul_fill":
        return b"\x00" * rng.randrange(1, 300)
    if op == "reverse_lines":
        return _join(lines[::-1])
    return data


# --- the tally --------------------------------------------------------------------------------

@dataclass
class Tally:
    """What the tests of one reader judged: cases by kind (e.g. ``line``: one mutated line, its
    outcome asserted; ``file``: one mutated whole file), and each kind's outcomes
    (``accepted`` or ``refused:<what>``)."""

    reader: str
    cases: Counter[str] = field(default_factory=Counter)
    outcomes: dict[str, Counter[str]] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.cases.values())

    def case(self, kind: str, outcome: str, n: int = 1) -> None:
        self.cases[kind] += n
        self.outcomes.setdefault(kind, Counter())[outcome] += n

    def summary(self) -> str:
        lines = [f"{self.reader}: {self.total:,} cases"]
        for kind, n in sorted(self.cases.items()):
            outcomes = ", ".join(f"{k} {v:,}" for k, v in self.outcomes[kind].most_common())
            lines.append(f"  {kind} {n:,}: {outcomes}")
        return "\n".join(lines)


TALLIES: dict[str, Tally] = {}


def tally(reader: str) -> Tally:
    return TALLIES.setdefault(reader, Tally(reader))


def require_cases(request: pytest.FixtureRequest, counted: Tally, minimum: int,
                  kind: str | None = None) -> Iterator[None]:
    """For a module-scoped fixture: after the module's tests, at least ``minimum`` cases (of
    ``kind``, or of all kinds), checked when every test of the module ran and none failed (so
    that ``-k`` stays usable)."""
    failed = request.session.testsfailed
    yield
    module = request.module
    defined = {name for name in vars(module) if name.startswith("test_")}
    selected = {item.name.split("[")[0] for item in request.session.items
                if getattr(item, "module", None) is module}
    if selected == defined and request.session.testsfailed == failed:
        n = counted.total if kind is None else counted.cases[kind]
        assert n >= minimum, counted.summary()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The counts, after the run (imported into tests/conftest.py as a hook)."""
    if not any(t.total for t in TALLIES.values()):
        return
    terminalreporter.section("mutation cases")
    for t in TALLIES.values():
        if t.total:
            terminalreporter.write_line(t.summary())


def outcome_of(exc: BaseException) -> str:
    """A refusal's kind for the tally: its message without the values it quotes."""
    text = str(getattr(exc, "message", exc)).split(" (")[0]
    text = re.sub(r"^line \d+ of the base64-decoded CSV: ", "decoded CSV: ", text)
    text = re.sub(r"(^|: )\S+ is .*?, (not|outside) ", r"\1<field> is …, \2 ", text)
    text = re.sub(r"'[^']*'|\[[^\]]*\]|0x[0-9a-f]{2}", "…", text)
    return re.sub(r"(?<![\w-])\d[\d,]*", "N", text)[:60]



# --- seeds ------------------------------------------------------------------------------------

_SYSTEM = {"role": "system", "content": "Classify this SMS as spam or ham."}
_CALL = {"id": "call_1", "type": "function",
         "function": {"name": "lookup", "arguments": '{"sender": "+4412345"}'}}
#: valid chat fine-tuning lines of every shape the format allows (each checked by the tests)
CHAT_SEEDS: list[dict[str, Any]] = [
    {"messages": [_SYSTEM, {"role": "user", "content": "WIN a FREE prize, call now"},
                  {"role": "assistant", "content": "spam"}]},
    {"messages": [{"role": "user", "content": "Lunch at 1? Café on the corner ☕"},
                  {"role": "assistant", "content": "ham"}]},
    {"messages": [_SYSTEM, {"role": "user", "content": "hi", "name": "alice"},
                  {"role": "assistant", "content": "ham", "weight": 0},
                  {"role": "user", "content": "Claim your £1000 reward"},
                  {"role": "assistant", "content": "spam", "weight": 1}]},
    {"messages": [{"role": "user", "content": [{"type": "text", "text": "Is this spam?"},
                                               {"type": "text", "text": "URGENT!!"}]},
                  {"role": "assistant", "content": "spam"}]},
    {"messages": [_SYSTEM, {"role": "user", "content": "Who sent this?"},
                  {"role": "assistant", "tool_calls": [_CALL]},
                  {"role": "tool", "tool_call_id": "call_1", "content": "unknown sender"},
                  {"role": "assistant", "content": "spam"}],
     "tools": [{"type": "function", "function": {
         "name": "lookup", "description": "Look up a sender",
         "parameters": {"type": "object", "properties": {"sender": {"type": "string"}}}}}]},
    {"messages": [{"role": "user", "content": "weather?"},
                  {"role": "assistant", "function_call": {"name": "weather",
                                                          "arguments": "{}"}},
                  {"role": "function", "name": "weather", "content": "sunny"},
                  {"role": "assistant", "content": "It is sunny."}],
     "functions": [{"name": "weather", "parameters": {"type": "object", "properties": {}}}]},
]
#: valid DPO preference pairs
PREFERENCE_SEEDS: list[dict[str, Any]] = [
    {"input": {"messages": [{"role": "user", "content": "Say hi politely"}]},
     "preferred_output": [{"role": "assistant", "content": "Hello, nice to meet you."}],
     "non_preferred_output": [{"role": "assistant", "content": "yo"}]},
    {"input": {"messages": [_SYSTEM, {"role": "user", "content": "FREE entry!!"}],
               "tools": []},
     "preferred_output": [{"role": "assistant", "content": "spam"}],
     "non_preferred_output": [{"role": "assistant", "content": "ham"}]},
]
