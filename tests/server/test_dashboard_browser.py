"""The dashboard at ``/`` in a real browser (Debian's chromium driven by Playwright) against a
real ``ftlens serve`` with an API key: the page asks for the key, lists a job the SDK created
on the tiny model, draws its loss curve gaining points as it trains, shows the curve
diagnosis and a checkpoint's metrics, lists files with a markup payload in a name shown as
text and a fine-tune file's audit; creates a job from the page, pauses, resumes and cancels
it; downloads the result CSV and compares two jobs' curves."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from openai import OpenAI
from tests.support.service import KEY, Service, serve
from tests.support.toy_chat import TOY, chat

from ftlens.steps.audit import audit_files, file_findings

PAYLOAD = "<img src=x onerror=alert(1)><svg onload=alert(2)><b>bold.jsonl"  # no '/': a name
ROWS = [chat(f"{t} ({i})", y) for i in range(4) for t, y in TOY]  # 48 examples


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    yield from serve(tmp_path_factory.mktemp("dashboard"), api_key=KEY, workers=1,
                     audit=file_findings)


def root(service: Service) -> str:
    return service.url.removesuffix("/v1")


def wait_for(check: Any, seconds: float = 180) -> Any:
    deadline = time.monotonic() + seconds
    while not (value := check()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
    return value


def test_the_page_holds_no_data_and_the_api_still_needs_the_key(dashboard: Service) -> None:
    page = httpx.get(root(dashboard) + "/")
    assert page.status_code == 200 and "ftlens" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "http" not in page.text.split("<body>")[0].replace("http-equiv", "")  # no CDN
    assert httpx.get(root(dashboard) + "/dashboard/app.js").status_code == 200
    auth = {"Authorization": f"Bearer {KEY}"}
    assert httpx.get(root(dashboard) + "/dashboard/..%2Fapp.py").status_code == 401
    assert httpx.get(root(dashboard) + "/dashboard/..%2Fapp.py", headers=auth).status_code == 404
    assert httpx.get(dashboard.url + "/fine_tuning/jobs").status_code == 401
    assert httpx.get(dashboard.url + "/dashboard/jobs/ftjob-x/diagnosis").status_code == 401


def test_a_job_trains_live_in_the_dashboard(dashboard: Service, browser: Any,
                                            tmp_path: Path) -> None:
    if isinstance(browser, str):  # no browser here: fail (never skip), saying how to fix it
        pytest.fail(browser, pytrace=False)
    client = OpenAI(base_url=dashboard.url, api_key=KEY, max_retries=0)
    data = "".join(json.dumps(r) + "\n" for r in ROWS).encode()
    train = client.files.create(file=(PAYLOAD, io.BytesIO(data)), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(model="tiny-random-llama", training_file=train.id,
                                         validation_file=train.id, seed=3,
                                         hyperparameters={"n_epochs": 3, "batch_size": 1},
                                         extra_body={"compute_classification_metrics": True})
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    problems: list[str] = []
    dialogs: list[str] = []
    outside: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("request", lambda r: None if r.url.startswith(root(dashboard)) else outside.append(
        r.url))
    try:
        page.goto(root(dashboard) + "/")
        page.wait_for_selector("#login[open]")  # 401: the page asks for the key
        page.fill("#login-key", KEY)
        page.click("#login button")
        page.wait_for_selector(f"text={job.id}")
        page.click(f"a:has-text('{job.id}')")
        page.wait_for_selector("#job-status")
        chart = "svg.chart >> nth=0"
        first = wait_for(lambda: int(page.get_attribute(chart, "data-points") or 0))
        wait_for(lambda: int(page.get_attribute(chart, "data-points") or 0) > first)  # live
        page.wait_for_selector("#alarms")
        done = wait_for(lambda: (j := client.fine_tuning.jobs.retrieve(job.id)).status in (
            "succeeded", "failed", "cancelled") and j, 600)
        assert done.status == "succeeded", done.error
        page.wait_for_selector("#job-status:has-text('succeeded')")
        ckpt = client.fine_tuning.jobs.checkpoints.list(job.id).data[0]
        page.click(f"tr:has-text('{ckpt.fine_tuned_model_checkpoint}')")
        shown = page.text_content("#checkpoint-metrics") or ""
        assert ckpt.fine_tuned_model_checkpoint in shown and '"step"' in shown
        # the diagnosis of a finished run speaks: at least one finding, in curves' words
        page.wait_for_selector("#alarms .alarm")
        assert page.locator("svg.chart polyline[data-series='train_loss']").count() == 1
        # the task metrics on a chart of their own, every logged point
        scored = [e for e in client.fine_tuning.jobs.list_events(job.id, limit=100)
                  if e.type == "metrics" and "classification/macro_f1" in (e.data or {})]
        task_chart = page.locator("svg.chart:has(polyline[data-series="
                                  "'classification/macro_f1'])")
        assert int(task_chart.get_attribute("data-points") or 0) >= len(scored) > 0
        assert page.locator("svg.chart polyline[data-series="
                            "'classification/recall/spam']").count() == 1
        with page.expect_download() as download:  # the result CSV, decoded from base64
            page.click("button:has-text('Download result CSV')")
        csv_text = Path(download.value.path()).read_text()
        assert csv_text.startswith("step,") and len(csv_text.splitlines()) > 10

        page.goto(root(dashboard) + "/#/files")
        page.wait_for_selector("h2:text-is('Files')")
        cell = page.wait_for_selector(f"tr:has(td:text-is('{train.id}')) td:nth-child(2)")
        assert cell.text_content() == PAYLOAD  # the name as text
        assert page.locator("main img, main b, main td svg").count() == 0  # never as markup
        audit = page.wait_for_selector(f".audit[data-file='{train.id}']")
        assert (audit.text_content() or "").startswith(f"{len(ROWS)} examples")
        expected = audit_files(dashboard.home / "files" / train.id)
        assert (audit.query_selector("strong").text_content() or "") == expected.verdict
        shown_ids = [a.get_attribute("data-id") for a in audit.query_selector_all(".alarm")]
        assert shown_ids == [f.id for f in expected.findings]  # the audit's own findings

        page.goto(root(dashboard) + "/#/new")
        page.wait_for_selector("form.new")
        upload = tmp_path / "new.jsonl"
        upload.write_bytes(data)
        page.set_input_files("input[name=training]", str(upload))
        page.select_option("select[name=model]", "tiny-random-llama")
        page.fill("input[name=n_epochs]", "10")  # long enough to pause, resume and cancel
        page.fill("input[name=batch_size]", "1")
        page.set_input_files("input[name=validation]", str(upload))
        page.check("input[name=task_metrics]")
        page.fill("input[name=positive]", "spam")
        page.click("#upload")
        page.wait_for_selector("#new-job-audit .audit")  # the audit before the start
        page.click("#start")
        page.wait_for_selector("#job-status")
        created = client.fine_tuning.jobs.list(limit=1).data[0]
        assert created.id != job.id and created.hyperparameters.n_epochs == 10
        assert created.model_dump()["classification_positive_class"] == "spam"
        page.wait_for_selector("#job-status:has-text('running')", timeout=120_000)
        page.click("button:has-text('Pause')")
        page.wait_for_selector("#job-status:has-text('paused')", timeout=120_000)
        page.click("button:has-text('Resume')")
        page.wait_for_selector("button:has-text('Pause')", timeout=120_000)  # running again
        page.click("button:has-text('Cancel')")
        wait_for(lambda: client.fine_tuning.jobs.retrieve(created.id).status == "cancelled")
        page.wait_for_selector("#job-status:has-text('cancelled')")
        assert any(e.message == "The job has been resumed and queued"  # every page
                   for e in client.fine_tuning.jobs.list_events(created.id, limit=100))

        page.goto(root(dashboard) + "/#/jobs")  # two jobs' curves on one chart
        page.wait_for_selector(f"input[data-job='{created.id}']")
        page.check(f"input[data-job='{job.id}']")
        page.check(f"input[data-job='{created.id}']")
        page.click("#compare")
        page.wait_for_selector(f"svg.chart polyline[data-series='{job.id}']")
        assert page.locator("svg.chart >> nth=0").get_attribute("data-points") is not None
    finally:
        page.close()
        client.close()
    assert not problems and not dialogs and not outside
