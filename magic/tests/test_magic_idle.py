"""`%ngsci idle`: what it sends (one class, both, never, default) and what it shows."""

from __future__ import annotations

from typing import Any

import pytest

from ngsci_magic.magic import NgsciError, NgsciMagics, Table, format_idle, parse_idle_value


def klass(chosen: int | None, effective: int, lo: int, hi: int, clamped: bool = False) -> dict:
    return {
        "chosenSeconds": chosen,
        "effectiveSeconds": effective,
        "defaultSeconds": 3600,
        "minSeconds": lo,
        "maxSeconds": hi,
        "boundsFromAdmin": True,
        "clamped": clamped,
    }


class StubApi:
    def __init__(self, answer: dict | None = None, error: NgsciError | None = None) -> None:
        self.calls: list[tuple[str, str, Any]] = []
        self.answer = answer or {
            "user": "ada",
            "cpu": klass(2700, 2700, 600, 14400),
            "gpu": klass(None, 1800, 300, 0),
            "updatedAt": None,
        }
        self.error = error

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def request(self, method: str, path: str, body: Any = None) -> Any:
        self.calls.append((method, path, body))
        if self.error:
            raise self.error
        return self.answer


def run(line: str, api: StubApi) -> Any:
    return NgsciMagics(shell=None, api_factory=lambda: api, env={}).ngsci(line)


def test_shows_the_current_value_and_bounds() -> None:
    api = StubApi()
    out = run("idle", api)
    assert api.calls == [("GET", "/me/idle-timeout", None)]
    assert isinstance(out, Table)
    text = out.text()
    assert "45 min" in text
    assert "10 min to 4 h" in text
    assert "5 min or more, or never" in text
    assert "admin's (1 h)" in text


@pytest.mark.parametrize(
    ("line", "body"),
    [
        ("idle 45m", {"cpuSeconds": 2700, "gpuSeconds": 2700}),
        ("idle 45", {"cpuSeconds": 2700, "gpuSeconds": 2700}),
        ("idle 1h30m --gpu", {"gpuSeconds": 5400}),
        ("idle never --cpu", {"cpuSeconds": 0}),
        ("idle default", {"cpuSeconds": None, "gpuSeconds": None}),
    ],
)
def test_sets_what_was_asked(line: str, body: dict) -> None:
    api = StubApi()
    run(line, api)
    assert api.calls == [("PUT", "/me/idle-timeout", body)]


def test_a_refusal_is_one_line_with_the_bounds(capsys: pytest.CaptureFixture[str]) -> None:
    message = "an idle timeout of 2 h is outside the bounds for GPU sizes: 5 min to 1 h"
    api = StubApi(error=NgsciError("idle_timeout_out_of_bounds", message))
    assert run("idle 2h --gpu", api) is None
    err = capsys.readouterr().err
    assert err.strip() == f"ngsci: [idle_timeout_out_of_bounds] {message}"


def test_a_clamped_choice_is_said(capsys: pytest.CaptureFixture[str]) -> None:
    api = StubApi(
        {
            "user": "ada",
            "cpu": klass(10800, 7200, 600, 7200, clamped=True),
            "gpu": klass(None, 1800, 300, 3600),
            "updatedAt": None,
        }
    )
    text = run("idle", api).text()
    assert "narrowed the bounds" in text
    assert "3 h (outside the bounds now)" in text


def test_bad_values_never_reach_the_service(capsys: pytest.CaptureFixture[str]) -> None:
    api = StubApi()
    for line in ("idle soon", "idle 5m 6m", "idle --gpu"):
        assert run(line, api) is None
    assert api.calls == []
    assert "[usage]" in capsys.readouterr().err


def test_formats() -> None:
    assert [format_idle(s) for s in (0, 45, 60, 2700, 5400, 86400, 93600)] == [
        "never",
        "45 s",
        "1 min",
        "45 min",
        "1 h 30 min",
        "1 d",
        "1 d 2 h",
    ]
    assert parse_idle_value("default") is None
    assert parse_idle_value("never") == 0
