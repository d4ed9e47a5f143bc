"""A file's ``expires_after`` through the official openai SDK against a real ``ftlens serve``:
the file shows ``expires_at``; once that passes it is neither listed nor retrievable and its
bytes are gone; values outside OpenAI's bounds are a 400 naming ``expires_after``."""

from __future__ import annotations

import io
import json
from typing import Any

import httpx2 as httpx
import openai
import pytest
from openai import OpenAI
from tests.support.service import KEY, Service
from tests.support.toy_chat import TOY, chat

from ftlens.server.store import Store, now

DATA = "".join(json.dumps(chat(t, y)) + "\n" for t, y in TOY).encode()


@pytest.fixture(scope="module")
def client(service: Service) -> OpenAI:
    return OpenAI(base_url=service.url, api_key=KEY, max_retries=0)


def _upload(client: OpenAI, **extra: Any) -> Any:
    return client.files.create(file=("train.jsonl", io.BytesIO(DATA)), purpose="fine-tune",
                               **extra)


def _pass_time(service: Service, file_id: str) -> None:
    """As if the file's hour had gone by: its expiry moved to the past."""
    with Store(service.home).connect() as db:
        db.execute("UPDATE files SET expires_at = ? WHERE id = ?", (now() - 1, file_id))


def test_an_expired_file_is_gone_rows_and_bytes(client: OpenAI, service: Service) -> None:
    kept = _upload(client)
    assert kept.expires_at is None
    up = _upload(client, expires_after={"anchor": "created_at", "seconds": 3600})
    assert up.expires_at == up.created_at + 3600
    assert client.files.retrieve(up.id).expires_at == up.expires_at
    assert client.files.content(up.id).read() == DATA  # not expired yet
    assert up.id in [f.id for f in client.files.list()]
    path = service.home / "files" / up.id
    assert path.is_file()

    _pass_time(service, up.id)
    assert up.id not in [f.id for f in client.files.list()]
    assert kept.id in [f.id for f in client.files.list()]
    for call in (client.files.retrieve, client.files.content, client.files.delete):
        with pytest.raises(openai.NotFoundError):
            call(up.id)
    assert not path.exists()
    with pytest.raises(openai.BadRequestError) as err:  # nor can a job train on it
        client.fine_tuning.jobs.create(model="tiny-random-llama", training_file=up.id)
    assert err.value.body["param"] == "training_file"  # type: ignore[index]


def test_an_expired_file_is_swept_even_if_nobody_asks_for_it(
        client: OpenAI, service: Service) -> None:
    up = _upload(client, expires_after={"anchor": "created_at", "seconds": 7200})
    _pass_time(service, up.id)
    client.files.retrieve(_upload(client).id)  # any file lookup sweeps the expired ones
    assert not (service.home / "files" / up.id).exists()
    with Store(service.home).connect() as db:
        assert db.execute("SELECT COUNT(*) FROM files WHERE id = ?", (up.id,)).fetchone()[0] == 0


@pytest.mark.parametrize("value", [
    {"anchor": "created_at", "seconds": 3599},
    {"anchor": "created_at", "seconds": 2592001},
    {"anchor": "last_active_at", "seconds": 3600},
    {"anchor": "created_at"},
    {"anchor": "created_at", "seconds": "soon"},
])
def test_bad_expiry_values_are_refused_naming_expires_after(
        client: OpenAI, value: dict[str, Any]) -> None:
    before = {f.id for f in client.files.list()}
    with pytest.raises(openai.BadRequestError) as err:
        _upload(client, expires_after=value)
    assert err.value.body["param"] == "expires_after"  # type: ignore[index]
    assert {f.id for f in client.files.list()} == before  # nothing was stored


def test_the_schema_has_the_expiry_fields_and_a_part_that_is_no_text_is_named(
        service: Service) -> None:
    """The upload's schema lists the form fields the SDK sends (so the API fuzz test sends
    them too); one sent as a file part instead of text is a 400 naming that field, as it
    is named in the form."""
    headers = {"Authorization": f"Bearer {KEY}"}
    doc = httpx.get(service.url.removesuffix("/v1") + "/openapi.json", headers=headers).json()
    body = doc["components"]["schemas"]["Body_upload_v1_files_post"]
    assert set(body["properties"]) == {"file", "purpose", "expires_after[anchor]",
                                       "expires_after[seconds]", "expires_after"}
    assert body["required"] == ["file", "purpose"]
    response = httpx.post(service.url + "/files", headers=headers, data={
        "purpose": "fine-tune", "expires_after[anchor]": "created_at"}, files={
        "file": ("train.jsonl", DATA), "expires_after[seconds]": ("s.txt", b"3600")})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == "expires_after[seconds]" and "valid string" in error["message"]
