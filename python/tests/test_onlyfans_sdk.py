"""The official OnlyFansAPI Python SDK (PyPI `onlyfans`) against the mock.

Each test gets `upload_mock`, its own session of one shared mock: its own jobs, its own clock
(nothing here sleeps to let time pass) and its own journal.
"""

from pathlib import Path
from urllib.parse import urlsplit

import httpx
import onlyfansapi
import pytest

from conftest import API_KEY

ACCOUNT = "acct_sdk0000000000000"
SAMPLE = Path(__file__).resolve().parents[2] / "fixtures" / "media" / "sample.jpg"


@pytest.fixture
def client(upload_mock):
    """The SDK pointed at the mock, in this test's session."""
    return onlyfansapi.OnlyFansAPI(
        api_key=API_KEY,
        base_url=upload_mock.base_url,
        default_headers=upload_mock.headers,
    )


def upload_async(client, **extra):
    answer = client.media.upload(ACCOUNT, file=SAMPLE.open("rb"), async_=True, **extra)
    return answer.to_dict()


def status(client, upload_id):
    return client.media.uploads.get_status(upload_id, account=ACCOUNT).to_dict()


def test_a_sync_upload_answers_the_finished_media(client):
    media = client.media.upload(ACCOUNT, file=SAMPLE.open("rb"), type="default")
    assert media.prefixed_id.startswith("ofapi_media_")
    assert media.thumbs and media.thumbs[0].url.startswith("http")
    assert media.file_name == "sample.jpg"


def test_an_async_upload_goes_pending_processing_completed(client, upload_mock):
    accepted = upload_async(client)
    assert accepted["status"] == "pending"
    upload_id = accepted["prefixed_id"]
    polling_url = urlsplit(accepted["polling_url"])
    assert polling_url.path == f"/api/{ACCOUNT}/media/uploads/{upload_id}/status"
    # The URL names this test's session, so it can be followed without the header.
    assert polling_url.query == f"mock_session={upload_mock.name}"

    assert status(client, upload_id)["status"] == "pending"
    upload_mock.advance("1s")
    assert status(client, upload_id)["status"] == "processing"
    upload_mock.advance("2s")
    done = status(client, upload_id)
    assert done["status"] == "completed"
    assert done["credits_used"] > 0
    assert done["media"]["thumbs"][0]["url"].startswith(upload_mock.base_url)


def test_a_vault_upload_is_vault_media(client, upload_mock):
    answer = client.media.vault.upload(ACCOUNT, file=SAMPLE.open("rb")).to_dict()
    media = answer["data"]
    assert media["type"] == "photo"
    # Answered before OnlyFans has processed it, as the provider's example shows a vault upload.
    assert media["isReady"] is False
    assert media["files"]["full"]["url"] is None
    assert "_meta" in answer


def test_a_job_that_fails_says_why(client, upload_mock):
    upload_mock.use_scenario("fail-while-processing")
    upload_id = upload_async(client)["prefixed_id"]
    upload_mock.advance("1m")
    failed = status(client, upload_id)
    assert failed["status"] == "failed"
    assert "could not be transcoded" in failed["error"]


def test_onlyfans_rejecting_the_media_carries_its_reason_verbatim(client, upload_mock):
    upload_mock.use_scenario("rejected-by-onlyfans")
    upload_id = upload_async(client)["prefixed_id"]
    upload_mock.advance("1m")
    failed = status(client, upload_id)
    assert failed["status"] == "failed"
    assert "Wrong file format or corrupted file" in failed["error"]


def test_a_wrong_key_raises_the_sdks_authentication_error(upload_mock):
    client = onlyfansapi.OnlyFansAPI(
        api_key="not-the-key", base_url=upload_mock.base_url, default_headers=upload_mock.headers
    )
    with pytest.raises(onlyfansapi.AuthenticationError) as raised:
        client.media.upload(ACCOUNT, file=SAMPLE.open("rb"))
    assert raised.value.status_code == 401
    assert "Unauthorized" in raised.value.body["error"]


def test_an_unknown_upload_raises_not_found(client):
    with pytest.raises(onlyfansapi.NotFoundError) as raised:
        status(client, "ofapi_media_doesnotexist")
    assert raised.value.status_code == 404


def test_neither_file_nor_file_url_raises_unprocessable_entity(client):
    with pytest.raises(onlyfansapi.UnprocessableEntityError) as raised:
        client.media.upload(ACCOUNT, type="default")
    assert raised.value.status_code == 422
    assert "file" in raised.value.body["errors"]


def test_the_sdk_honours_retry_after_on_429_by_itself(client, upload_mock):
    upload_mock.use_scenario("rate-limited")  # status polls 2 and 3 answer 429, Retry-After: 2
    upload_id = upload_async(client)["prefixed_id"]
    status(client, upload_id)
    # One call: the SDK meets two 429s and retries after Retry-After each time.
    assert status(client, upload_id)["status"] in ("pending", "processing")
    polls = upload_mock.journal(route="status")
    assert [poll["status"] for poll in polls] == [200, 429, 429, 200]
    assert all(poll["retry_after"] == 2 for poll in polls[1:3])


def test_the_sdk_retries_5xx_by_itself(client, upload_mock):
    upload_mock.use_scenario("flaky-5xx")  # polls 1, 3 and 4 answer 503, 502 and 500
    upload_id = upload_async(client)["prefixed_id"]
    upload_mock.advance("3s")
    assert status(client, upload_id)["status"] == "completed"
    statuses = [poll["status"] for poll in upload_mock.journal(route="status")]
    assert statuses == [503, 200]


def test_links_expire_when_the_clock_passes_them(client, upload_mock):
    media = client.media.upload(ACCOUNT, file=SAMPLE.open("rb"))
    thumb = media.thumbs[0].url
    assert httpx.get(thumb).status_code == 200
    upload_mock.advance("24h 1s")  # CloudFront links here live a day
    expired = httpx.get(thumb)
    assert expired.status_code == 403
    assert "expired" in expired.text.lower() or expired.headers.get("x-mock-denied-reason")


def test_a_retried_upload_after_a_failed_job_succeeds(client, upload_mock):
    upload_mock.use_scenario("fail-then-succeed-on-retry")
    first = upload_async(client)["prefixed_id"]
    upload_mock.advance("1m")
    assert status(client, first)["status"] == "failed"
    second = upload_async(client)["prefixed_id"]
    upload_mock.advance("1m")
    assert status(client, second)["status"] == "completed"
    uploads = upload_mock.journal(route="upload")
    assert uploads[1]["repeat_of"] == uploads[0]["seq"]


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.mark.anyio
async def test_the_async_client_polls_the_same_lifecycle(upload_mock):
    client = onlyfansapi.AsyncOnlyFansAPI(
        api_key=API_KEY, base_url=upload_mock.base_url, default_headers=upload_mock.headers
    )
    accepted = (await client.media.upload(ACCOUNT, file=SAMPLE.open("rb"), async_=True)).to_dict()
    upload_mock.advance("5s")
    done = (await client.media.uploads.get_status(accepted["prefixed_id"], account=ACCOUNT)).to_dict()
    assert done["status"] == "completed"
    await client.close()
