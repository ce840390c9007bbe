"""`%ngsci usage` shows GPU money wasted (issue 15, part 3) as `ngsci usage` does.

The figure is the service's (`GET /usage` → `gpuIdle`); the wording is the contract's
(contract/src/gpu-waste.ts, formatGpuIdle) plus the CLI's threshold note. The last test runs the
real CLI (cli/src, through node and tsx) against the same fake service and compares the line.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell

from ngsci_magic.magic import NgsciMagics, Table, gpu_idle_line

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "server-token-gpu-usage-31"


def usage_answer(gpu_idle: dict[str, int] | None) -> dict[str, Any]:
    u: dict[str, Any] = {
        "user": "ada",
        "from": "2026-11-01T00:00:00.000Z",
        "to": "2026-11-30T07:00:00.000Z",
        "granularity": "day",
        "totalMicros": 41_260_000,
        "asOf": "2026-11-30T07:00:00.000Z",
        "series": [
            {
                "start": "2026-11-19T00:00:00.000Z",
                "size": "gpu-a100",
                "seconds": 36_000,
                "activeSeconds": 24_480,
                "idleSeconds": 11_520,
                "amountMicros": 41_260_000,
            }
        ],
    }
    if gpu_idle is not None:
        u["gpuIdle"] = gpu_idle
    return u


# 3.2 h idle of 10 h sampled, $8.40 at the instance's rate
WASTED = {
    "idleSeconds": 11_520,
    "sampledSeconds": 36_000,
    "idleMicros": 8_400_000,
    "thresholdPercent": 5,
}


@pytest.fixture
def service() -> Iterator[tuple[dict[str, Any], str]]:
    """A fake service answering GET /api/v1/usage with `state['usage']`."""
    state: dict[str, Any] = {"usage": usage_answer(WASTED), "auth": []}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state["auth"].append(self.headers.get("authorization"))
            path = self.path.split("?")[0]
            ok = path == "/api/v1/usage"
            raw = json.dumps(
                state["usage"] if ok else {"code": "not_found", "message": path, "requestId": "r"}
            ).encode()
            self.send_response(200 if ok else 404)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}/api/v1"
    server.shutdown()
    server.server_close()


@pytest.fixture
def shell() -> Iterator[InteractiveShell]:
    sh = InteractiveShell.instance()
    yield sh
    sh.events.callbacks["post_run_cell"].clear()


def magic_usage(shell: InteractiveShell, url: str) -> Table:
    env = {"NGSCI_API_URL": url, "JUPYTERHUB_API_TOKEN": TOKEN, "JUPYTERHUB_SERVER_NAME": ""}
    shell.register_magics(NgsciMagics(shell, env=env))
    out = shell.run_line_magic("ngsci", "usage")
    assert isinstance(out, Table)
    return out


def test_the_line_reads_hours_and_dollars_as_every_surface():
    assert gpu_idle_line(WASTED) == "idle GPU: 3.2 h, $8.40 (every GPU below 5%)"
    longer = {**WASTED, "idleSeconds": 11_700, "idleMicros": 8_401_375}
    # hours from 1 h: one decimal; an amount from $1: two decimals (contract figures.ts)
    assert gpu_idle_line(longer) == "idle GPU: 3.3 h, $8.40 (every GPU below 5%)"
    tiny = {"idleSeconds": 20, "sampledSeconds": 30, "idleMicros": 22_778, "thresholdPercent": 10}
    assert gpu_idle_line(tiny) == "idle GPU: 0.01 h, $0.023 (every GPU below 10%)"
    # sampled but never idle: said, as zero
    busy = {**WASTED, "idleSeconds": 0, "idleMicros": 0}
    assert gpu_idle_line(busy) == "idle GPU: 0 h, $0.00 (every GPU below 5%)"
    # nothing sampled (no GPU, or no agent report yet): nothing to say
    assert gpu_idle_line({**WASTED, "sampledSeconds": 0}) is None
    assert gpu_idle_line(None) is None


def test_usage_shows_the_line_under_its_title_in_text_and_html(service, shell):
    state, url = service
    out = magic_usage(shell, url)
    text = out.text().splitlines()
    assert text[0] == "usage of ada from 2026-11-01 to 2026-11-30: $41.26 (as of 07:00:00 UTC)"
    assert text[1] == "idle GPU: 3.2 h, $8.40 (every GPU below 5%)"
    assert text[2] == ""
    rich = out._repr_html_()
    assert "<br>idle GPU: 3.2 h, &#36;8.40 (every GPU below 5%)</caption>" in rich
    assert "$" not in rich, "no raw dollar sign for MathJax"
    assert state["auth"] == [f"token {TOKEN}"]


def test_usage_without_a_gpu_sample_has_no_idle_line(service, shell):
    state, url = service
    state["usage"] = usage_answer(None)
    assert "idle GPU" not in magic_usage(shell, url).text()
    state["usage"] = usage_answer({**WASTED, "sampledSeconds": 0, "idleSeconds": 0})
    out = magic_usage(shell, url)
    assert "idle GPU" not in out.text()
    assert out.text().splitlines()[1] == ""


def cli_usage(url: str) -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the CLI cannot run here")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", str(ROOT)),
        "NGSCI_API_URL": url,
        "NGSCI_TOKEN": TOKEN,
        "NO_COLOR": "1",
    }
    r = subprocess.run(  # noqa: S603 (fixed arguments)
        [node, "--import", "tsx", str(ROOT / "cli" / "src" / "index.ts"), "usage"],
        cwd=ROOT / "cli",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.mark.parametrize(
    "figure",
    [
        WASTED,
        {"idleSeconds": 20, "sampledSeconds": 30, "idleMicros": 22_778, "thresholdPercent": 10},
        {
            "idleSeconds": 1_234_567,
            "sampledSeconds": 2_000_000,
            "idleMicros": 1_371_742_223,
            "thresholdPercent": 5,
        },
        {"idleSeconds": 0, "sampledSeconds": 90, "idleMicros": 0, "thresholdPercent": 5},
    ],
    ids=["3.2h", "tiny", "large", "never-idle"],
)
def test_the_magic_and_ngsci_usage_print_the_same_line(service, shell, figure):
    state, url = service
    state["usage"] = usage_answer(figure)
    cli = [line for line in cli_usage(url).splitlines() if line.startswith("idle GPU")]
    magic = [line for line in magic_usage(shell, url).text().splitlines() if "idle GPU" in line]
    assert len(cli) == 1, "ngsci usage prints the line once"
    assert magic == cli
