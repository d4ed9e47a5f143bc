"""The upload's table of hostile inputs: every row of the audit's table (the same files, the same
expectations; tests/io/test_hostile_audit.py) uploaded with the official openai SDK's
``client.files.create(purpose="fine-tune")`` to one service. A file the audit refuses is a 400
(``openai.BadRequestError``, never a 500) whose message names the file and the line (or, for a
file that is not JSON lines at all, its shape) with the audit's words; a file the audit accepts
is stored as it was sent."""

from __future__ import annotations

import io
from pathlib import Path

import openai
import pytest
from openai import OpenAI
from tests.io.test_hostile_audit import AUDIT, Row, ids, path_of
from tests.support.service import KEY, Service


@pytest.fixture(scope="module")
def client(service: Service) -> OpenAI:
    return OpenAI(base_url=service.url, api_key=KEY, max_retries=0, timeout=120)


@pytest.mark.parametrize("row", AUDIT, ids=ids(AUDIT))
def test_upload(row: Row, client: OpenAI, tmp_path: Path) -> None:
    path = path_of(row, tmp_path)
    data = path.read_bytes()
    if row.finding is None:
        up = client.files.create(file=(path.name, io.BytesIO(data)), purpose="fine-tune")
        assert (up.filename, up.bytes, up.purpose) == (path.name, len(data), "fine-tune")
        assert client.files.content(up.id).read() == data
        return
    with pytest.raises(openai.BadRequestError) as err:
        client.files.create(file=(path.name, io.BytesIO(data)), purpose="fine-tune")
    body = err.value.body
    assert isinstance(body, dict) and (body["param"], body["code"]) == ("file", "invalid_file")
    message = body["message"]
    if row.line is not None:
        assert message.startswith(f"{path.name}, line {row.line}: "), message
    else:  # about the whole file: no line is named
        assert message.startswith(f"{path.name}: ") and ", line " not in message, message
    for words in row.words:
        assert words in message, (words, message)
    assert str(path.parent) not in message and len(message) < 1500  # never the server's path
