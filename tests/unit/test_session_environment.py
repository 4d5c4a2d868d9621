"""The hook's requests session reads proxies and CA bundles from the environment as requests does, once per
host and setting: the same answers as a plain ``requests.Session``, a changed variable taking effect."""

from __future__ import annotations

import urllib.request
from typing import Any

import pytest
import requests

from airflow_provider_celonis.hooks.transport import ENVIRONMENT_NAMES, _Session

URLS = ["https://team.eu-1.celonis.cloud/integration/api/v1/data-push/p/jobs/", "http://localhost:8085/x"]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENVIRONMENT_NAMES:
        monkeypatch.delenv(name, raising=False)


def settings(session: requests.Session, url: str, verify: Any = None) -> Any:
    return session.merge_environment_settings(url, {}, None, verify, None)


@pytest.mark.parametrize(
    "environment",
    [
        {},
        {"HTTPS_PROXY": "http://proxy:3128"},
        {"https_proxy": "http://lower:3128", "HTTPS_PROXY": "http://upper:3128"},
        {"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": "celonis.cloud,localhost"},
        {"ALL_PROXY": "socks5://all:1080", "no_proxy": "*"},
        {"HTTP_PROXY": "http://cgi:3128", "REQUEST_METHOD": "GET"},
        {"REQUESTS_CA_BUNDLE": "/etc/ssl/bundle.pem"},
    ],
)
def test_the_same_answers_as_requests(monkeypatch: pytest.MonkeyPatch, environment: dict[str, str]) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    ours = _Session()
    for url in URLS:
        for _ in range(2):  # the second answer comes from the cache
            assert settings(ours, url) == settings(requests.Session(), url)


def test_a_changed_variable_takes_effect(monkeypatch: pytest.MonkeyPatch) -> None:
    session = _Session()
    assert settings(session, URLS[0])["proxies"] == {}
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy:3128")
    assert settings(session, URLS[0])["proxies"]["https"] == "http://proxy:3128"
    monkeypatch.setenv("NO_PROXY", "celonis.cloud")
    assert "https" not in settings(session, URLS[0])["proxies"]


def test_the_environment_is_walked_once_per_host(monkeypatch: pytest.MonkeyPatch) -> None:
    walks = []
    real = urllib.request.getproxies_environment

    def counting() -> dict[str, str]:
        walks.append(1)
        return real()

    monkeypatch.setattr(urllib.request, "getproxies_environment", counting)
    monkeypatch.setattr(urllib.request, "getproxies", counting)
    session = _Session()
    for _ in range(5):
        for url in URLS:
            settings(session, url)
    plain = requests.Session()
    before = len(walks)
    for _ in range(5):
        settings(plain, URLS[0])
    assert before <= 2 * len(URLS)  # our session: once or twice per host, whatever the number of requests
    assert len(walks) - before >= 5  # requests' own: every request


def test_a_cached_answer_is_not_shared_mutable_state(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy:3128")
    session = _Session()
    settings(session, URLS[0])["proxies"]["https"] = "changed by a caller"
    assert settings(session, URLS[0])["proxies"]["https"] == "http://proxy:3128"
