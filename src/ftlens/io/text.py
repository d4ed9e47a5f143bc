"""A text file's bytes as text, or a clear error: UTF-16 named as such, and a byte that is not
UTF-8 named by its line and column with the command that converts the file."""

from __future__ import annotations

from pathlib import Path

from ftlens.errors import DataError

UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def decode_utf8(raw: bytes, path: Path, *, expected: str | None = None,
                wrong_file: str = "") -> str:
    """``raw`` decoded as UTF-8 (a leading byte-order mark dropped). ``wrong_file``: said
    after the hint when undecodable bytes may mean the wrong file was given."""
    converted = f"{str(path).rsplit('.', 1)[0]}.utf8{path.suffix}"
    if raw.startswith(UTF16_BOMS):
        raise DataError("the file is encoded as UTF-16, not UTF-8", path=path, expected=expected,
                        hint=f"convert it: iconv -f UTF-16 -t UTF-8 {path} > {converted}")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        column = exc.start - raw.rfind(b"\n", 0, exc.start)
        raise DataError(f"byte 0x{raw[exc.start]:02x} at column {column} is not valid UTF-8",
                        path=path, line=line, expected=expected,
                        hint=f"save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8 {path} > "
                        f"{converted}`){wrong_file}") from exc
