"""The models an operator brings: names registered under ``FTLENS_HOME/models.json``
(``ftlens models add``) or for one service (``ftlens serve --model NAME=PATH``), each a Hugging
Face model directory, a GGUF file, or a hub id already in the local Hugging Face cache.

Only the operator registers a path; an API client names a registered model (or a cached hub
id) and never a path. A hub id is loaded from the cache, offline, unless
``FTLENS_ALLOW_DOWNLOAD=1``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ftlens.errors import ConfigError

REGISTRY_FILE = "models.json"
ALLOW_DOWNLOAD_ENV = "FTLENS_ALLOW_DOWNLOAD"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*")
TEMPLATE_FILES = ("chat_template.jinja", "chat_template.json")


@dataclass(frozen=True)
class Registered:
    name: str
    source: str  # an absolute path, or a hub id
    kind: str  # "directory", "gguf" or "hub"


def downloads_allowed() -> bool:
    return os.environ.get(ALLOW_DOWNLOAD_ENV, "") not in ("", "0")


def hub_snapshot(hub_id: str) -> Path | None:
    """The local Hugging Face cache's snapshot of ``hub_id``, if it holds one."""
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ImportError:
        return None
    cache = os.environ.get("HF_HUB_CACHE") or (
        str(Path(os.environ["HF_HOME"]) / "hub") if os.environ.get("HF_HOME") else None)
    try:
        return Path(snapshot_download(hub_id, local_files_only=True, cache_dir=cache))
    except (LocalEntryNotFoundError, OSError, ValueError):
        return None


def _has_template(folder: Path) -> bool:
    if any((folder / f).is_file() for f in TEMPLATE_FILES):
        return True
    try:
        config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and bool(config.get("chat_template"))


def expanded(source: str) -> Path:
    """``source`` as a path, ``~`` expanded; as it is when it names the home of no known user
    (``~nobody/x``, which then simply does not exist), never an exception."""
    try:
        return Path(source).expanduser()
    except RuntimeError:  # "Could not determine home directory"
        return Path(source)


def check_source(source: str) -> tuple[str, str]:
    """``(kind, source)`` of a model to register, checked: a directory with ``config.json``
    and a chat template, a ``.gguf`` file, or a hub id in the local cache."""
    path = expanded(source)
    if path.is_file() and path.suffix == ".gguf":
        return "gguf", str(path.resolve())
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ConfigError(f"{path} has no config.json: it is not a Hugging Face model "
                              "directory", hint="point at the folder `save_pretrained` wrote")
        if not _has_template(path):
            raise ConfigError(f"{path} has no chat template, so its answers cannot be found "
                              "for the loss", hint="use the instruct (chat) version of the "
                              "model, or add a chat_template to its tokenizer_config.json")
        return "directory", str(path.resolve())
    if path.exists() or source.startswith((".", "/", "~")) or not HUB_ID.fullmatch(source):
        raise ConfigError(f"{source!r} is not a model directory, a .gguf file or a hub id",
                          hint="give a folder with config.json, a .gguf file, or a hub id "
                               "such as Qwen/Qwen2.5-0.5B-Instruct")
    return check_hub(source)


def check_hub(hub_id: str) -> tuple[str, str]:
    """``("hub", hub_id)`` for a hub id in the local Hugging Face cache (or any hub id when
    downloads are allowed). Never looks at the file system outside the cache: a client's
    ``org/name`` is not a path."""
    if not HUB_ID.fullmatch(hub_id):
        raise ConfigError(f"{hub_id!r} is not a hub id", hint="e.g. Qwen/Qwen2.5-0.5B-Instruct")
    snapshot = hub_snapshot(hub_id)
    if snapshot is None and not downloads_allowed():
        raise ConfigError(f"{hub_id} is not in the local Hugging Face cache, and ftlens does "
                          "not download models", hint=f"download it first (`hf download "
                          f"{hub_id}`), or set {ALLOW_DOWNLOAD_ENV}=1")
    if snapshot is not None and not _has_template(snapshot):
        raise ConfigError(f"{hub_id} has no chat template in the cache",
                          hint="use the instruct (chat) version of the model")
    return "hub", hub_id


def _registered(name: str, source: str) -> Registered:
    kind, where = check_source(source)
    return Registered(name, where, kind)


class Registry:
    """The registered models of a home, plus those of this service (``session``)."""

    def __init__(self, home: Path, session: Mapping[str, str] | None = None) -> None:
        self.path = home / REGISTRY_FILE
        # the service's own models, checked once (``parse_session`` checked them at start)
        self.session = {name: _registered(name, src) for name, src in (session or {}).items()}

    def _stored(self) -> dict[str, dict[str, str]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{self.path} is unreadable ({exc})",
                              hint="fix or remove it, then register the models again") from None
        return data if isinstance(data, dict) else {}

    def all(self) -> list[Registered]:
        try:
            found = {name: Registered(name, str(e["source"]), str(e["kind"]))
                     for name, e in self._stored().items()}
        except (KeyError, TypeError):
            raise ConfigError(f"{self.path} is not what `ftlens models add` writes",
                              hint="fix or remove it, then register the models again") from None
        found.update(self.session)
        return sorted(found.values(), key=lambda r: r.name)

    def lookup(self, name: str) -> Registered | None:
        return next((r for r in self.all() if r.name == name), None)

    def add(self, name: str, source: str, *, reserved: tuple[str, ...] = ()) -> Registered:
        if not NAME.fullmatch(name) or name.lower() in reserved or name.startswith("ft:"):
            raise ConfigError(f"{name!r} cannot name a model", hint="use letters, digits, "
                              "'.', '_' or '-' (at most 64), not a built-in model's name")
        kind, where = check_source(source)
        with self._locked():
            stored = self._stored()
            stored[name] = {"source": where, "kind": kind}
            self._write(stored)
        return Registered(name, where, kind)

    def remove(self, name: str) -> bool:
        with self._locked():
            stored = self._stored()
            if stored.pop(name, None) is None:
                return False
            self._write(stored)
        return True

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """One read-modify-write of the registry at a time (two `ftlens models add` at once
        both land)."""
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        with (self.path.parent / f".{REGISTRY_FILE}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _write(self, stored: dict[str, dict[str, str]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.part")
        tmp.write_text(json.dumps(stored, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        tmp.replace(self.path)


def parse_session(values: tuple[str, ...]) -> dict[str, str]:
    """``serve --model NAME=PATH`` values, each checked."""
    out = {}
    for value in values:
        name, sep, source = value.partition("=")
        if not sep or not NAME.fullmatch(name) or not source:
            raise ConfigError(f"--model {value!r} is not NAME=PATH",
                              hint="e.g. --model qwen-tiny=/models/qwen2-0.5b-instruct")
        check_source(source)
        out[name] = source
    return out
