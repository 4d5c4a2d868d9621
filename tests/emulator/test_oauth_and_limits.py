"""OAuth 2.0 client credentials and the execute rate limits."""

from __future__ import annotations

import time

import pytest
import requests

from airflow_provider_celonis.emulator.testing import running_emulator
from tests.emulator.api_client import Api

CLIENTS = ("full:s3cret", "narrow:pw:integration.data-pools:data_push", "other:pw:studio")


def token(url: str, auth: tuple[str, str] | None = None, **form: str) -> requests.Response:
    return requests.post(f"{url}/oauth2/token", data={"grant_type": "client_credentials", **form}, auth=auth)


def test_client_credentials_basic_and_form() -> None:
    with running_emulator(oauth_clients=CLIENTS) as emu:
        r = token(emu.url, ("full", "s3cret"), scope="integration.data-pools")
        assert r.status_code == 200
        body = r.json()
        assert body["token_type"] == "Bearer"
        assert body["expires_in"] == 899
        assert body["scope"] == "integration.data-pools"
        assert Api(emu, auth=f"Bearer {body['access_token']}").session.get(Api(emu).base).status_code == 200
        r = token(emu.url, client_id="narrow", client_secret="pw")
        assert r.json()["scope"] == "integration.data-pools:data_push"
        api = Api(emu, auth=f"Bearer {r.json()['access_token']}")
        assert api.session.get(api.base).status_code == 200


def test_wrong_client_scope_and_grant() -> None:
    with running_emulator(oauth_clients=CLIENTS) as emu:
        r = token(emu.url, ("full", "wrong"))
        assert r.status_code == 401
        assert r.json()["error"] == "invalid_client"
        assert token(emu.url, client_id="nobody", client_secret="x").status_code == 401
        r = token(emu.url, ("narrow", "pw"), scope="integration.data-pools")
        assert r.status_code == 400
        assert r.json()["error"] == "invalid_scope"
        r = requests.post(f"{emu.url}/oauth2/token", data={"grant_type": "password"}, auth=("full", "s3cret"))
        assert r.status_code == 400
        assert r.json()["error"] == "unsupported_grant_type"


def test_token_without_data_push_scope_is_403() -> None:
    with running_emulator(oauth_clients=CLIENTS) as emu:
        access = token(emu.url, ("other", "pw")).json()["access_token"]
        api = Api(emu, auth=f"Bearer {access}")
        assert api.session.get(api.base).status_code == 403


def test_tokens_expire() -> None:
    with running_emulator(oauth_clients=CLIENTS, token_ttl=1) as emu:
        body = token(emu.url, ("full", "s3cret")).json()
        assert body["expires_in"] == 1
        api = Api(emu, auth=f"Bearer {body['access_token']}")
        assert api.session.get(api.base).status_code == 200
        deadline = time.monotonic() + 10
        while (status := api.session.get(api.base).status_code) == 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert status == 401


@pytest.mark.parametrize("profile", ["documented", "lenient"])
def test_per_second_limit(profile: str) -> None:
    with running_emulator(execute_per_second=2, execute_per_hour=1000, profile=profile) as emu:
        api = Api(emu)
        jobs = [api.create()["id"] for _ in range(3)]
        # A second boundary can fall between the calls; retry a few times until 3 land in one second.
        for _ in range(20):
            answers = [api.execute(j) for j in jobs]
            limited = [r for r in answers if r.status_code == 429]
            if limited:
                break
            jobs = [api.create()["id"] for _ in range(3)]
        assert limited
        if profile == "lenient":
            assert limited[0].headers["Retry-After"] == "1"
            assert set(limited[0].json()) == {"reference", "message", "shortMessage"}
        else:  # the docs: "429 Too Many Requests, No Content", no Retry-After promised
            assert "Retry-After" not in limited[0].headers
            assert limited[0].content == b""


@pytest.mark.parametrize("profile", ["documented", "lenient"])
def test_per_window_limit_with_retry_after(profile: str) -> None:
    with running_emulator(execute_per_hour=2, quota_window_seconds=3, profile=profile) as emu:
        api = Api(emu)
        # Start right after a window boundary so all three calls land in the same window.
        while time.time() % 3 > 1.5:
            time.sleep(0.05)
        answers = [api.execute(api.create()["id"]).status_code for _ in range(3)]
        assert answers == [200, 200, 429]
        r = api.execute(api.create()["id"])
        assert r.status_code == 429
        if profile == "lenient":
            assert 1 <= int(r.headers["Retry-After"]) <= 3
        else:
            assert "Retry-After" not in r.headers
        deadline = time.monotonic() + 10
        job = api.create()["id"]
        while (r := api.execute(job)).status_code == 429:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert r.status_code == 200


def test_limits_can_change_on_a_running_emulator() -> None:
    with running_emulator(execute_per_hour=0) as emu:
        api = Api(emu)
        job = api.create()["id"]
        assert api.execute(job).status_code == 429
        emu.settings.execute_per_hour = 5
        assert api.execute(job).status_code == 200
