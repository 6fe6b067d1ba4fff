"""A plain httpx Fansly client against the mock: the lifecycle, links, errors and faults."""

from pathlib import Path

import httpx
import pytest

from conftest import API_KEY

SAMPLE = Path(__file__).resolve().parents[2] / "fixtures" / "media" / "sample.jpg"


@pytest.fixture
def fansly(upload_mock):
    """An httpx client as a Fansly integrator writes one, in this test's session."""
    with httpx.Client(base_url=upload_mock.base_url, headers=upload_mock.fansly_headers(API_KEY)) as client:
        yield client


def upload(client, **headers):
    answer = client.post(
        "/api/fansly/86540/media/upload",
        files={"file": ("sample.jpg", SAMPLE.read_bytes(), "image/jpeg")},
        headers=headers,
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["data"]["jobId"]


def poll(client, job_id):
    return client.get(f"/api/fansly/media/upload/{job_id}/status")


def test_a_job_goes_waiting_active_completed_and_serves_its_bytes(fansly, upload_mock):
    job_id = upload(fansly)
    assert poll(fansly, job_id).json()["data"]["state"] == "waiting"
    upload_mock.advance("1s")
    active = poll(fansly, job_id).json()["data"]
    assert active["state"] == "active" and 0 <= active["progress"] < 100
    upload_mock.advance("2s")
    completed = poll(fansly, job_id).json()["data"]
    assert completed["state"] == "completed" and completed["progress"] == 100
    media = completed["result"]["accountMedia"][0]["media"]
    assert (media["width"], media["height"]) == (444, 421)
    link = media["locations"][0]["location"]
    assert httpx.get(link).content == SAMPLE.read_bytes()


def test_links_expire_after_five_hours_on_the_mocks_clock(fansly, upload_mock):
    job_id = upload(fansly)
    upload_mock.advance("3s")
    link = poll(fansly, job_id).json()["data"]["result"]["accountMedia"][0]["media"]["locations"][0]["location"]
    upload_mock.advance("4h 59m")
    assert httpx.get(link).status_code == 200
    upload_mock.advance("2m")
    assert httpx.get(link).status_code == 403


def test_a_failed_job_carries_its_reason(fansly, upload_mock):
    job_id = upload(fansly, **{"X-Mock-Scenario": "fail-while-processing"})
    upload_mock.advance("1m")
    failed = poll(fansly, job_id).json()["data"]
    assert failed["state"] == "failed"
    assert "could not be transcoded" in failed["failedReason"]


def test_qa_can_force_a_running_job_to_fail(fansly, upload_mock):
    job_id = upload(fansly)
    upload_mock.fail("fansly", job_id, "Upload to the CDN failed. Please try again.")
    failed = poll(fansly, job_id).json()["data"]
    assert (failed["state"], failed["failedReason"]) == ("failed", "Upload to the CDN failed. Please try again.")


def test_a_wrong_key_is_401_in_the_fansly_envelope(upload_mock):
    answer = httpx.post(
        f"{upload_mock.base_url}/api/fansly/86540/media/upload",
        headers=upload_mock.fansly_headers("not-the-key"),
        files={"file": ("sample.jpg", SAMPLE.read_bytes(), "image/jpeg")},
    )
    assert answer.status_code == 401
    assert answer.json()["statusCode"] == 401


def test_an_unknown_job_is_404(fansly):
    answer = poll(fansly, "999999")
    assert answer.status_code == 404
    assert answer.json()["statusCode"] == 404


def test_rate_limited_polls_carry_retry_after(fansly, upload_mock):
    upload_mock.use_scenario("rate-limited")
    job_id = upload(fansly)
    assert poll(fansly, job_id).status_code == 200
    limited = poll(fansly, job_id)
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "2"
    assert upload_mock.journal(route="status", job=job_id)[-1]["fault"] == "respond"


def test_sessions_keep_tests_apart(fansly, upload_mock, upload_mock_server):
    job_id = upload(fansly)
    other = upload_mock_server.session()
    assert [job["id"] for job in upload_mock.jobs()] == [job_id]
    assert other.jobs() == []
    other.advance("1h")
    assert poll(fansly, job_id).json()["data"]["state"] == "waiting"
