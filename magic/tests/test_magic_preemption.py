"""`%ngsci preemption`: what it sends (a choice, --clear, the keep-state flag) and what it shows."""

from __future__ import annotations

from typing import Any

import pytest

from ngsci_magic.magic import NgsciMagics, Table


def answer(chosen: str | None = None, keep: bool = False) -> dict:
    return {
        "user": "ada",
        "chosen": chosen,
        "adminDefault": "stop",
        "effective": chosen or "stop",
        "source": "user" if chosen else "admin",
        "keepState": keep,
        "updatedAt": None,
    }


class StubApi:
    def __init__(self, reply: dict) -> None:
        self.calls: list[tuple[str, str, Any]] = []
        self.reply = reply

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def request(self, method: str, path: str, body: Any = None) -> Any:
        self.calls.append((method, path, body))
        return self.reply


def run(line: str, api: StubApi) -> Any:
    return NgsciMagics(shell=None, api_factory=lambda: api, env={}).ngsci(line)


def test_alone_shows_what_applies_and_whose() -> None:
    api = StubApi(answer())
    out = run("preemption", api)
    assert api.calls == [("GET", "/me/preemption", None)]
    assert isinstance(out, Table)
    text = out.text()
    assert "stop (the organisation's default)" in text
    assert "your default  none" in text
    assert "not kept (documents are saved)" in text
    assert "overrides both" in text


@pytest.mark.parametrize(
    ("line", "body"),
    [
        ("preemption on-demand", {"onPreemption": "on-demand"}),
        ("preemption SPOT", {"onPreemption": "spot"}),
        ("preemption --clear", {"onPreemption": None}),
        ("preemption --keep-state", {"keepState": True}),
        ("preemption stop --no-keep-state", {"onPreemption": "stop", "keepState": False}),
    ],
)
def test_sets_what_it_is_given(line: str, body: dict) -> None:
    api = StubApi(answer(body.get("onPreemption"), bool(body.get("keepState"))))
    out = run(line, api)
    assert api.calls == [("PUT", "/me/preemption", body)]
    assert " set" in out.title
    if body.get("keepState"):
        assert "saved at a spot notice" in out.text()


def test_a_choice_of_its_own_reads_as_yours() -> None:
    out = run("preemption on-demand", StubApi(answer("on-demand", keep=True)))
    text = out.text()
    assert "relaunch on-demand (your default)" in text
    assert "saved at a spot notice, restored after the relaunch" in text
    assert "<caption>" in out._repr_html_()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("preemption later", "on-demand, spot or stop, not 'later'"),
        ("preemption spot stop", "one choice"),
        ("preemption spot --clear", "not both"),
        ("preemption --keep-state --no-keep-state", "not both"),
        ("preemption --soon", "unknown option '--soon'"),
    ],
)
def test_bad_arguments_send_nothing(line: str, message: str, capsys: pytest.CaptureFixture) -> None:
    api = StubApi(answer())
    assert run(line, api) is None
    assert message in capsys.readouterr().err
    assert api.calls == []


def test_help_names_it() -> None:
    assert (
        "%ngsci preemption [on-demand|spot|stop|--clear]" in run("help", StubApi(answer())).message
    )
