"""`%ngsci` in a real IPython shell against a fake ngsci service on 127.0.0.1.

The fake records every request and answers scripted bodies, so these tests check what the magic
sends (argument parsing), what it shows (text and HTML), and that service errors are one line.
tests/src/magic.test.ts runs it in a real kernel against the real service.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell

from ngsci_magic import magic as magic_module
from ngsci_magic.magic import (
    Api,
    NgsciMagics,
    Table,
    dollars,
    help_text,
    load_ipython_extension,
    parse_duration,
    tell_pages,
)

TOKEN = "server-token-do-not-print-77"

INSTANCE = {
    "id": "i-1",
    "user": "ada",
    "server": "default",
    "size": "cpu-small",
    "cloud": "local",
    "region": "local",
    "spot": False,
    "state": "running",
    "errorCode": None,
    "errorMessage": None,
    "exitCode": None,
    "url": "/user/ada/",
    "ratePerHourMicros": 48_000,
    "billedMicros": 12_345,
    "createdAt": "2026-11-20T10:00:00.000Z",
    "readyAt": "2026-11-20T10:00:05.000Z",
    "stoppedAt": None,
}


class FakeService:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.answers: dict[tuple[str, str], tuple[int, Any]] = {
            ("GET", "/me"): (
                200,
                {
                    "name": "ada",
                    "admin": False,
                    "groups": [],
                    "plan": {"id": "p", "label": "Private", "multiplierPpm": 1},
                },
            ),
            ("GET", "/instances"): (
                200,
                {"instances": [INSTANCE], "asOf": "2026-11-20T10:30:00.000Z", "streams": []},
            ),
            ("GET", "/instances/default"): (200, INSTANCE),
            ("POST", "/instances/default/stop"): (202, {**INSTANCE, "state": "stopping"}),
            ("POST", "/instances/default/resize"): (202, INSTANCE),
            ("POST", "/notify"): (202, {"title": "t", "body": "b", "level": "info"}),
            ("GET", "/budget"): (
                200,
                {
                    "user": "ada",
                    "month": "2026-11",
                    "spentMicros": 80_000_000,
                    "spentTodayMicros": 8_949,
                    "burnMicrosPerHour": 526_000,
                    "gpuHoursUsed": 3.5,
                    "gpuHoursLimit": None,
                    "exhaustedAt": "2026-11-28T06:00:00.000Z",
                    "limits": {},
                    "budgets": [
                        {
                            "kind": "user",
                            "name": "ada",
                            "budgetMicros": 100_000_000,
                            "spentMicros": 80_000_000,
                            "percent": 80,
                            "hardStop": True,
                            "burnMicrosPerHour": 526_000,
                            "exhaustedAt": None,
                        }
                    ],
                },
            ),
            ("GET", "/usage"): (
                200,
                {
                    "user": "ada",
                    "from": "2026-11-01T00:00:00.000Z",
                    "to": "2026-11-20T00:00:00.000Z",
                    "granularity": "day",
                    "totalMicros": 1_260_000,
                    "series": [
                        {
                            "start": "2026-11-19T00:00:00.000Z",
                            "size": "gpu-t4",
                            "seconds": 8640,
                            "activeSeconds": 7200,
                            "idleSeconds": 1440,
                            "amountMicros": 1_260_000,
                        }
                    ],
                },
            ),
        }

    def answer(self, method: str, path: str) -> tuple[int, Any]:
        return self.answers.get(
            (method, path),
            (404, {"code": "not_found", "message": f"no route {path}", "requestId": "r"}),
        )


@pytest.fixture
def service() -> Iterator[tuple[FakeService, str]]:
    fake = FakeService()

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            path = self.path.removeprefix("/api/v1")
            fake.requests.append(
                {
                    "method": self.command,
                    "path": path,
                    "body": body,
                    "auth": self.headers.get("authorization"),
                }
            )
            status, payload = fake.answer(self.command, path)
            raw = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        do_GET = do_POST = do_PUT = _handle

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake, f"http://127.0.0.1:{server.server_address[1]}/api/v1"
    server.shutdown()
    server.server_close()


class Timers:
    """Stands in for threading.Timer: records delays, fires on demand."""

    def __init__(self) -> None:
        self.scheduled: list[tuple[float, Any]] = []

    def __call__(self, seconds: float, fn: Any) -> Any:
        timers = self

        class Handle:
            cancelled = False

            def cancel(self) -> None:
                self.cancelled = True
                timers.scheduled = [s for s in timers.scheduled if s[1] is not fn]

        self.scheduled.append((seconds, fn))
        return Handle()


@pytest.fixture
def shell() -> Iterator[InteractiveShell]:
    sh = InteractiveShell.instance()
    yield sh
    sh.events.callbacks["post_run_cell"].clear()


@pytest.fixture
def magic(
    shell: InteractiveShell, service: tuple[FakeService, str]
) -> tuple[NgsciMagics, FakeService, Timers]:
    fake, url = service
    timers = Timers()
    env = {"NGSCI_API_URL": url, "JUPYTERHUB_API_TOKEN": TOKEN, "JUPYTERHUB_SERVER_NAME": ""}
    m = NgsciMagics(shell, env=env, timer=timers)
    shell.register_magics(m)
    return m, fake, timers


def test_status_is_a_table_in_text_and_html(magic, shell):
    _, fake, _ = magic
    out = shell.run_line_magic("ngsci", "status")
    assert isinstance(out, Table)
    text = repr(out)
    assert "ada · plan Private" in text
    assert "cpu-small" in text
    assert "running" in text
    assert "$0.048/h" in text, "a rate is never rounded"
    assert "$0.012 " in text, "what the instance cost so far, from the service's billedMicros"
    assert "(as of 10:30:00 UTC)" in text
    assert "<table" in out._repr_html_()
    assert "<td>cpu-small</td>" in out._repr_html_()
    assert fake.requests[0]["auth"] == f"token {TOKEN}"


def test_usage_and_budget_show_money_from_micro_dollars(magic, shell):
    usage = repr(shell.run_line_magic("ngsci", "usage"))
    assert "$1.26" in usage
    assert "gpu-t4" in usage
    assert "HOURS" in usage
    assert "2.4 h  2.0 h     0.40 h" in usage, "hours columns show hours"
    budget = repr(shell.run_line_magic("ngsci", "budget"))
    assert "spent $80.00, today $0.0089, burning $0.526/h" in budget
    assert "80%" in budget
    assert "$100.00" in budget
    assert "runs out: 2026-11-28 06:00" in budget


def test_rich_output_keeps_dollars_out_of_jupyterlabs_math(magic, shell):
    """JupyterLab typesets HTML outputs with MathJax, where `$...$` is a formula."""
    fake = magic[1]
    fake.answers[("GET", "/budget")][1]["spentMicros"] = 90_000
    fake.answers[("GET", "/budget")][1]["burnMicrosPerHour"] = 380_000
    for verb in ("budget", "usage", "status"):
        out = shell.run_line_magic("ngsci", verb)
        rich = out._repr_html_()
        assert "$" not in rich, f"{verb}: no raw dollar sign in the HTML"
        assert "mathjax_ignore" in rich, f"{verb}: MathJax is told to leave the table alone"
        assert "$" in repr(out), "plain text keeps its dollar signs"
    budget = shell.run_line_magic("ngsci", "budget")._repr_html_()
    assert "spent &#36;0.090, today &#36;0.0089, burning &#36;0.38/h" in budget


def test_stop_now_and_stop_in_ten_minutes(magic, shell):
    _m, fake, timers = magic
    assert "is stopping" in repr(shell.run_line_magic("ngsci", "stop"))
    assert fake.requests[-1]["method"] == "POST"
    assert fake.requests[-1]["path"] == "/instances/default/stop"

    fake.requests.clear()
    msg = repr(shell.run_line_magic("ngsci", "stop --in 10m"))
    assert "stops in 10m" in msg
    assert [r["path"] for r in fake.requests] == ["/instances/default"], "nothing stopped yet"
    assert timers.scheduled[0][0] == 600
    timers.scheduled[0][1]()
    assert fake.requests[-1]["path"] == "/instances/default/stop"

    shell.run_line_magic("ngsci", "stop --in 1h")
    assert "cancelled" in repr(shell.run_line_magic("ngsci", "stop --cancel"))
    assert timers.scheduled == [s for s in timers.scheduled if s[0] != 3600]


def test_resize_sends_the_size(magic, shell):
    _, fake, _ = magic
    msg = repr(shell.run_line_magic("ngsci", "resize cpu-large"))
    assert "from cpu-small to cpu-large" in msg
    assert fake.requests[-1]["body"] == {"size": "cpu-large"}


def test_resize_sends_a_pair_of_packages(magic, shell):
    _, fake, _ = magic
    msg = repr(shell.run_line_magic("ngsci", "resize --cpu M --gpu a100"))
    assert "from cpu-small to m.a100" in msg
    assert fake.requests[-1]["body"] == {"cpu": "m", "gpu": "a100"}
    shell.run_line_magic("ngsci", "resize --cpu=xl")
    assert fake.requests[-1]["body"] == {"cpu": "xl", "gpu": "none"}


def test_notify_message_and_options(magic, shell):
    _, fake, _ = magic
    shell.run_line_magic(
        "ngsci", 'notify "epoch 10 done: loss 0.03" --level warning --title Training'
    )
    assert fake.requests[-1]["body"] == {
        "message": "epoch 10 done: loss 0.03",
        "level": "warning",
        "server": "default",
        "title": "Training",
    }


def test_notify_on_error_sends_a_notice_for_a_failing_cell_only(magic, shell):
    _, fake, _ = magic
    shell.run_line_magic("ngsci", "notify --on-error")
    fake.requests.clear()
    shell.run_cell("x = 1")
    assert fake.requests == []
    shell.run_cell("model = None\nmodel.fit()")
    assert len(fake.requests) == 1
    body = fake.requests[0]["body"]
    assert body["kind"] == "failure"
    assert body["level"] == "error"
    assert "AttributeError" in body["message"]
    assert "model = None" in body["message"]
    shell.run_line_magic("ngsci", "notify --on-error --off")
    shell.run_cell("1/0")
    assert len(fake.requests) == 1


def test_stop_after_announces_the_stop_and_tells_the_page(magic, shell, monkeypatch, capsys):
    _, fake, _ = magic
    told: list[dict[str, Any]] = []
    monkeypatch.setattr(magic_module, "tell_pages", lambda data: told.append(dict(data)) or True)
    shell.run_cell_magic("ngsci", "stop_after", "result = sum(range(10))")
    assert shell.user_ns["result"] == 45, "the cell ran in the user's namespace"
    assert [r["path"] for r in fake.requests] == ["/notify", "/instances/default/stop"]
    assert fake.requests[-1]["body"] == {
        "reason": "stop_after",
        "cell": "finished",
        "graceSeconds": 30,
    }, "the service stops after the grace unless a page saves and stops it first"
    assert len(told) == 1
    assert told[0]["kind"] == "stop_after"
    assert told[0]["server"] == "default"
    assert told[0]["cell"] == "finished"
    out = capsys.readouterr()
    assert "stops once JupyterLab has saved the open documents, within 30 s" in out.out
    assert out.err == ""


def test_stop_after_grace_and_another_server(magic, shell, monkeypatch):
    _, fake, _ = magic
    monkeypatch.setattr(magic_module, "tell_pages", lambda data: True)
    shell.run_cell_magic("ngsci", "stop_after --grace 2m", "pass")
    assert fake.requests[-1]["body"]["graceSeconds"] == 120
    fake.requests.clear()
    fake.answers[("POST", "/instances/gpu1/stop")] = (202, {**INSTANCE, "server": "gpu1"})
    shell.run_cell_magic("ngsci", "stop_after --server gpu1", "pass")
    assert fake.requests[-1]["path"] == "/instances/gpu1/stop"
    assert fake.requests[-1]["body"] == {}, "another server has no page here: it stops at once"


def test_stop_after_ends_without_a_traceback_when_the_stop_interrupts_the_kernel(
    magic, shell, monkeypatch, capsys
):
    _m, _fake, _ = magic
    real = Api.post

    def interrupted(self, path, body=None):
        if path.endswith("/stop"):
            raise KeyboardInterrupt  # what the stopping server does to a kernel mid-request
        return real(self, path, body)

    monkeypatch.setattr(Api, "post", interrupted)
    assert shell.run_cell_magic("ngsci", "stop_after", "print('trained: 42')") is None
    out = capsys.readouterr()
    assert "trained: 42" in out.out
    assert "Traceback" not in out.out + out.err
    assert "KeyboardInterrupt" not in out.out + out.err


def test_tell_pages_outside_a_kernel_is_harmless():
    # an IPython console has no frontend: the comm package's stand-in takes the message
    assert tell_pages({"kind": "stop_after"}) in (True, False)


@pytest.mark.parametrize(
    ("on_error", "paths"),
    [
        ("notify", ["/notify"]),
        ("stop", ["/notify", "/instances/default/stop"]),
        ("keep", []),
    ],
)
def test_stop_after_on_error(magic, shell, on_error, paths):
    _, fake, _ = magic
    shell.run_cell_magic(
        "ngsci", f"stop_after --on-error {on_error}", "raise ValueError('diverged')"
    )
    assert [r["path"] for r in fake.requests] == paths
    if on_error == "notify":
        assert "ValueError: diverged" in fake.requests[0]["body"]["message"]


def test_service_errors_are_one_line_without_traceback(magic, shell, capsys):
    _, fake, _ = magic
    fake.answers[("POST", "/instances/default/resize")] = (
        409,
        {"code": "instance_busy", "message": "server 'default' is starting", "requestId": "r"},
    )
    assert shell.run_line_magic("ngsci", "resize gpu-t4") is None
    err = capsys.readouterr().err
    assert err == "ngsci: [instance_busy] server 'default' is starting\n"
    assert TOKEN not in err


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("stop --in soon", "--in must be a duration"),
        ("resize", "resize needs one SIZE"),
        ("resize GPU!", "not a size id"),
        ("resize --cpu xxl", "--cpu must be a CPU package (s, m, l, xl), not 'xxl'"),
        ("resize --cpu m --gpu k80", "--gpu must be a GPU package (none, t4"),
        ("resize --gpu t4", "--gpu needs --cpu"),
        ("resize gpu-t4 --cpu m", "either SIZE or --cpu"),
        ("notify", "notify needs one message"),
        ("notify 'x' --level loud", "--level must be"),
        ("teleport", "unknown verb 'teleport'"),
        ("status --bogus", "unknown option '--bogus'"),
        ("stop_after", "is a cell magic"),
        ('notify "unterminated', "cannot read the arguments"),
    ],
)
def test_bad_arguments_are_one_clear_line_and_send_nothing(magic, shell, capsys, line, needle):
    _, fake, _ = magic
    assert shell.run_line_magic("ngsci", line) is None
    err = capsys.readouterr().err
    assert needle in err
    assert err.startswith("ngsci: [usage]")
    assert err.count("\n") == 1
    assert fake.requests == []


def test_stop_after_with_a_bad_option_does_not_run_the_cell(magic, shell, capsys):
    _, fake, _ = magic
    shell.run_cell_magic("ngsci", "stop_after --on-error panic", "ran = True")
    assert "ran" not in shell.user_ns
    assert "--on-error must be notify, stop or keep" in capsys.readouterr().err
    assert fake.requests == []


def test_unreachable_and_unconfigured(shell, capsys):
    m = NgsciMagics(shell, env={})
    shell.register_magics(m)
    shell.run_line_magic("ngsci", "status")
    assert "NGSCI_API_URL is not set" in capsys.readouterr().err
    m2 = NgsciMagics(
        shell, env={"NGSCI_API_URL": "http://127.0.0.1:9/api/v1", "JUPYTERHUB_API_TOKEN": TOKEN}
    )
    shell.register_magics(m2)
    shell.run_line_magic("ngsci", "budget")
    err = capsys.readouterr().err
    assert err.startswith(
        "ngsci: [unreachable] cannot reach the ngsci service at http://127.0.0.1:9"
    )
    assert TOKEN not in err


def test_help_and_parsers(shell):
    load_ipython_extension(shell)
    assert "stop_after" in help_text()
    assert "%ngsci resize SIZE" in help_text()
    assert "%ngsci status" in repr(shell.run_line_magic("ngsci", "help"))
    assert shell.find_line_magic("ngsci").__doc__.startswith("%ngsci: your ngsci machine")
    assert parse_duration("1h30m") == 5400
    assert parse_duration("15") == 900
    assert dollars(526_000) == "$0.526"
    assert dollars(4_200) == "$0.0042"
    assert dollars(1) == "< $0.0001"
    assert dollars(1_999_999) == "$2.00"
    api = Api.from_env(
        {
            "NGSCI_API_URL": "/services/ngsci/api/v1",
            "JUPYTERHUB_API_TOKEN": "t",
            "JUPYTERHUB_PUBLIC_URL": "https://hub.example.org/",
        }
    )
    assert api.url == "https://hub.example.org/services/ngsci/api/v1"
