"""`%ngsci`: the ngsci service from a notebook or an IPython console.

A thin client of the ngsci API (standard library only), authenticated with the server's own
token (`$JUPYTERHUB_API_TOKEN`) at `$NGSCI_API_URL`. Loaded automatically in ngsci's
single-user environment; elsewhere: `%load_ext ngsci_magic`.

Service errors are shown as one line (`ngsci: [code] message`), never as a traceback.
"""

from __future__ import annotations

import contextlib
import html
import inspect
import json
import os
import re
import shlex
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from IPython.core.magic import Magics, line_cell_magic, magics_class

from .figures import format_hours, format_micros, format_rate

# The server-name rule: contract/src/server-name.ts is its one definition; this copy is checked
# against the contract's examples (contract/server-names.json) by tests/test_magic_server_names.py.
SERVER_NAME_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$"
DEFAULT_SERVER = "default"
SIZE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9.-]{0,62}$")
# the packages a pair combines (contract/src/packages.ts): `--cpu M --gpu a100` is the size m.a100
CPU_PACKAGES = ("s", "m", "l", "xl")
GPU_PACKAGES = ("none", "t4", "l4", "a10g", "v100", "a100", "a100x8", "h100x8")
DURATION_PATTERN = re.compile(r"^(?:\d+[smhd])+$")
ON_ERROR_CHOICES = ("notify", "stop", "keep")
# %%ngsci stop_after: how long the service waits for a page to save before it stops the server
STOP_GRACE = 30
MAX_STOP_GRACE = 300  # the service's limit (contract StopRequest)


class NgsciError(Exception):
    """A failure to show the user as one line: a code (the service's, or our own) and a message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"ngsci: [{self.code}] {self.message}"


class UsageError(NgsciError):
    def __init__(self, message: str) -> None:
        super().__init__("usage", f"{message} (see: %ngsci help)")


# ---- the HTTP seam


class Api:
    """Calls the ngsci API; error answers become `NgsciError` with the service's code."""

    def __init__(self, url: str, token: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Api:
        env = os.environ if env is None else env
        url = env.get("NGSCI_API_URL", "")
        token = env.get("JUPYTERHUB_API_TOKEN") or env.get("NGSCI_TOKEN", "")
        if not url:
            raise NgsciError(
                "not_configured", "NGSCI_API_URL is not set: this is not an ngsci server"
            )
        if url.startswith("/"):
            public = env.get("JUPYTERHUB_PUBLIC_URL", "")
            if not public:
                raise NgsciError(
                    "not_configured",
                    f"NGSCI_API_URL is a path ({url}); set it to a full URL such as "
                    f"https://hub.example.org{url}",
                )
            url = urllib.parse.urljoin(public, url)
        if not token:
            raise NgsciError("not_configured", "JUPYTERHUB_API_TOKEN is not set")
        return cls(url, token)

    def request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(  # noqa: S310 (the URL is the configured http(s) service)
            f"{self.url}{path}",
            data=data,
            method=method,
            headers={
                "Authorization": f"token {self.token}",
                "Accept": "application/json",
                **({"Content-Type": "application/json"} if data is not None else {}),
            },
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as res:  # noqa: S310
                raw = res.read()
        except urllib.error.HTTPError as err:
            raw = err.read()
            code, message = f"http_{err.code}", (err.reason or "error")
            try:
                payload = json.loads(raw)
                code = payload.get("code", code)
                message = payload.get("message", message)
            except (ValueError, AttributeError):
                pass
            raise NgsciError(code, str(message)) from None
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            origin = urllib.parse.urlsplit(self.url)
            raise NgsciError(
                "unreachable",
                f"cannot reach the ngsci service at {origin.scheme}://{origin.netloc} ({reason})",
            ) from None
        return json.loads(raw) if raw else None

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, {} if body is None else body)


# ---- values people type


def parse_duration(raw: str, flag: str = "--in") -> int:
    """`90s`, `10m`, `1h30m`, `2d` → seconds; a bare number is minutes."""
    text = raw.strip()
    if text.isdigit():
        seconds = int(text) * 60
    elif DURATION_PATTERN.match(text):
        units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
        seconds = sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([smhd])", text))
    else:
        raise UsageError(f"{flag} must be a duration such as 90s, 10m or 1h30m, not '{raw}'")
    if seconds <= 0:
        raise UsageError(f"{flag} must be longer than 0 s")
    return seconds


def parse_idle_value(raw: str) -> int | None:
    """`45m`, `1h30m` → seconds; `never` → 0; `default` → None (back to the admin's timeout)."""
    text = raw.strip().lower()
    if text in ("default", "reset", "admin"):
        return None
    if text in ("never", "off"):
        return 0
    return parse_duration(text, "the idle timeout")


def format_idle(seconds: int) -> str:
    """An idle timeout as the other ngsci surfaces write it (contract idle.ts)."""
    if seconds == 0:
        return "never"
    if seconds < 60:
        return f"{seconds} s"
    minutes, sec = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {sec} s" if sec else f"{minutes} min"
    hours, m = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {m} min" if m else f"{hours} h"
    days, h = divmod(hours, 24)
    return f"{days} d {h} h" if h else f"{days} d"


def idle_row(label: str, t: Mapping[str, Any]) -> list[str]:
    """One size class of `%ngsci idle`: what applies, what was chosen, the bounds."""
    if t["chosenSeconds"] is None:
        chosen = f"admin's ({format_idle(t['defaultSeconds'])})"
    elif t["clamped"]:
        chosen = f"{format_idle(t['chosenSeconds'])} (outside the bounds now)"
    else:
        chosen = format_idle(t["chosenSeconds"])
    lo, hi = format_idle(t["minSeconds"]), t["maxSeconds"]
    bounds = f"{lo} or more, or never" if hi == 0 else f"{lo} to {format_idle(hi)}"
    return [label, format_idle(t["effectiveSeconds"]), chosen, bounds]


# what each spot preemption choice does (contract OnPreemption), as `ngsci preemption` says it
PREEMPTION_WORDS = {
    "on-demand": "relaunch on-demand",
    "spot": "relaunch spot",
    "stop": "stop",
}


def is_server_name(name: str) -> bool:
    # fullmatch: `$` alone would let a trailing newline through, which the contract's rule does not
    return re.fullmatch(SERVER_NAME_PATTERN, name) is not None


def check_server(raw: str) -> str:
    if not is_server_name(raw):
        raise UsageError(f"'{raw}' is not a server name (lower-case letters, digits, inner dashes)")
    return raw


def check_size(raw: str) -> str:
    if not SIZE_PATTERN.match(raw):
        raise UsageError(f"'{raw}' is not a size id such as cpu-small or gpu-a100")
    return raw


def machine_choice(rest: list[str], opts: Mapping[str, str | bool]) -> tuple[dict[str, str], str]:
    """What a resize asks for: one SIZE, or --cpu PACKAGE [--gpu PACKAGE] (the pair `<cpu>.<gpu>`,
    --gpu defaulting to none). Answers the request body and the size id it names."""
    cpu, gpu = opts.get("cpu"), opts.get("gpu")
    if rest and (cpu or gpu):
        raise UsageError("give either SIZE or --cpu (with --gpu), not both")
    if rest:
        if len(rest) != 1:
            raise UsageError("resize needs one SIZE, e.g. %ngsci resize gpu-a100")
        size = check_size(rest[0])
        return {"size": size}, size
    if not cpu:
        if gpu:
            raise UsageError(
                f"--gpu needs --cpu as well (a CPU package: {', '.join(CPU_PACKAGES)})"
            )
        raise UsageError(
            "resize needs one SIZE, e.g. %ngsci resize gpu-a100, or --cpu M --gpu a100"
        )
    c = str(cpu).lower()
    g = str(gpu or "none").lower()
    if c not in CPU_PACKAGES:
        raise UsageError(f"--cpu must be a CPU package ({', '.join(CPU_PACKAGES)}), not '{cpu}'")
    if g not in GPU_PACKAGES:
        raise UsageError(f"--gpu must be a GPU package ({', '.join(GPU_PACKAGES)}), not '{gpu}'")
    return {"cpu": c, "gpu": g}, f"{c}.{g}"


def split_args(line: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError as err:
        raise UsageError(f"cannot read the arguments: {err}") from None


def take_options(
    args: Sequence[str], flags: Mapping[str, bool]
) -> tuple[dict[str, str | bool], list[str]]:
    """Splits `--name value` / `--name=value` / `--switch` options (flags: name → takes a value)."""
    opts: dict[str, str | bool] = {}
    rest: list[str] = []
    it = iter(args)
    for arg in it:
        if arg.startswith("--") and len(arg) > 2:
            name, eq, value = arg[2:].partition("=")
            if name not in flags:
                raise UsageError(f"unknown option '--{name}'")
            if flags[name]:
                if not eq:
                    following = next(it, None)
                    if following is None:
                        raise UsageError(f"--{name} needs a value")
                    value = following
                opts[name] = value
            else:
                if eq:
                    raise UsageError(f"--{name} takes no value")
                opts[name] = True
        else:
            rest.append(arg)
    return opts, rest


def dollars(micros: int) -> str:
    """µ$ → an amount as every ngsci surface writes it (figures.py: `$1,234.56`, `$0.0082`)."""
    return format_micros(micros)


def gpu_idle_line(f: Mapping[str, Any] | None) -> str | None:
    """GPU money wasted as `ngsci usage` words it (contract/src/gpu-waste.ts, formatGpuIdle):
    `idle GPU: 3.2 h, $8.40 (every GPU below 5%)`; None until an agent has sampled a GPU."""
    if not f or not f.get("sampledSeconds", 0) > 0:
        return None
    return (
        f"idle GPU: {format_hours(f['idleSeconds'])}, {format_micros(f['idleMicros'])}"
        f" (every GPU below {f['thresholdPercent']}%)"
    )


def duration(seconds: float) -> str:
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    h, m = divmod(s // 60, 60)
    return f"{h}h{m}m" if h and m else f"{h}h" if h else f"{m}m"


# ---- output: HTML in notebooks, text in consoles

# JupyterLab typesets rendered HTML with MathJax, where `$...$` is inline math: "spent $0.09,
# burning $0.38/h" became a formula. Our HTML is kept out of it twice over: its container has
# MathJax's ignore class (`mathjax_ignore`; `tex2jax_ignore` for MathJax 2 viewers), and no `$` is
# left raw in the markup (`&#36;`), so nothing that reads the source sees a delimiter either.
NO_MATH = "mathjax_ignore tex2jax_ignore"


def html_text(text: str) -> str:
    """Escapes text for HTML, dollar signs included."""
    return html.escape(text).replace("$", "&#36;")


class Table:
    """A table that notebooks show as HTML and consoles as aligned text."""

    def __init__(
        self,
        headers: Sequence[str],
        rows: Sequence[Sequence[Any]],
        title: str = "",
        notes: Sequence[str] = (),
    ) -> None:
        self.headers = list(headers)
        self.rows = [["-" if c is None else str(c) for c in r] for r in rows]
        self.title = title
        # lines under the title (the usage's idle GPU figure)
        self.notes = list(notes)

    def text(self) -> str:
        widths = [
            max([len(h)] + [len(r[i]) for r in self.rows]) for i, h in enumerate(self.headers)
        ]
        line = lambda cells: "  ".join(c.ljust(widths[i]) for i, c in enumerate(cells)).rstrip()  # noqa: E731
        body = [line([h.upper() for h in self.headers]), *(line(r) for r in self.rows)]
        if not self.rows:
            body.append("(none)")
        top = [t for t in (self.title, *self.notes) if t]
        return "\n".join(([*top, ""] if top else []) + body)

    def __repr__(self) -> str:
        return self.text()

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self.text())

    def _repr_html_(self) -> str:
        esc = html_text
        head = "".join(f"<th>{esc(h)}</th>" for h in self.headers)
        rows = (
            "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in self.rows)
            or f'<tr><td colspan="{len(self.headers)}">(none)</td></tr>'
        )
        top = [t for t in (self.title, *self.notes) if t]
        caption = f"<caption>{'<br>'.join(esc(t) for t in top)}</caption>" if top else ""
        return (
            f'<table class="jp-ngsci-table {NO_MATH}">{caption}'
            f"<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
        )


class Message:
    """One line of result: plain text in consoles, a paragraph in notebooks."""

    def __init__(self, text: str) -> None:
        self.message = text

    def __repr__(self) -> str:
        return self.message

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self.message)

    def _repr_html_(self) -> str:
        return f'<p class="jp-ngsci-message {NO_MATH}">{html_text(self.message)}</p>'


def as_of(answer: Mapping[str, Any]) -> str:
    """The service's clock of an answer, for a title: ` (as of 15:01:07 UTC)`."""
    at = answer.get("asOf") or ""
    return f" (as of {at[11:19]} UTC)" if len(at) >= 19 else ""


def instance_table(instances: Sequence[Mapping[str, Any]], title: str = "") -> Table:
    """Instances with their rate and what each has cost so far (the service's `billedMicros`)."""
    return Table(
        ["server", "size", "cloud", "state", "rate", "cost so far", "since", "error"],
        [
            [
                i["server"],
                i["size"],
                i["cloud"] + (" (spot)" if i.get("spot") else ""),
                i["state"],
                format_rate(i["ratePerHourMicros"]),
                None if i.get("billedMicros") is None else format_micros(i["billedMicros"]),
                (i.get("readyAt") or i["createdAt"])[:16].replace("T", " "),
                i.get("errorCode"),
            ]
            for i in instances
        ],
        title,
    )


@magics_class
class NgsciMagics(Magics):
    """The `%ngsci` line magic and the `%%ngsci` cell magic."""

    def __init__(
        self,
        shell: Any = None,
        api_factory: Callable[[], Api] | None = None,
        env: Mapping[str, str] | None = None,
        timer: Callable[[float, Callable[[], None]], Any] | None = None,
    ) -> None:
        super().__init__(shell)
        self._env = os.environ if env is None else env
        self._api_factory = api_factory or (lambda: Api.from_env(self._env))
        self._timer = timer or _daemon_timer
        self._pending_stop: Any = None
        self._on_error_hook: Callable[..., None] | None = None

    @property
    def server(self) -> str:
        return self._env.get("JUPYTERHUB_SERVER_NAME") or DEFAULT_SERVER

    @line_cell_magic
    def ngsci(self, line: str, cell: str | None = None) -> Any:
        """%ngsci: your ngsci machine from a notebook.

        Line magics:
          %ngsci status                  who you are, your plan, your instances
          %ngsci usage                   this month's usage and cost
          %ngsci budget                  spend, burn rate, budgets and when they run out
          %ngsci stop [SERVER] [--in 10m]   stop this server (now, or after a delay)
          %ngsci stop --cancel           cancel a delayed stop
          %ngsci resize SIZE             restart this server on another size
          %ngsci resize --cpu M --gpu a100   ...on a CPU package with a GPU package (m.a100)
          %ngsci resize SIZE --keep-state   ...keeping the notebooks' variables (lists first
                                         what cannot be kept; --yes resizes without those)
          %ngsci notify "message"        send yourself a notice (JupyterLab, email, webhook)
          %ngsci idle [45m] [--cpu|--gpu]   your idle timeout and the bounds your admin allows;
                                         with a value (45m, 1h30m, never, default) sets it
          %ngsci preemption [on-demand|spot|stop|--clear] [--keep-state|--no-keep-state]
                                         your default when the cloud takes a spot machine back
                                         (relaunch on demand, on spot, or stop); --keep-state:
                                         the notebooks' variables are saved at a spot notice
          %ngsci notify --on-error       send a notice whenever a cell fails (--off to stop)
          %ngsci help                    this text

        Cell magic:
          %%ngsci stop_after [--on-error notify|stop|keep] [--grace 30s]
              Runs the cell, then stops this server so a finished run spends nothing more.
              JupyterLab saves every open document (with the cell's output) first; with no
              page open the server stops after the grace (default 30s, at most 5m).
              If the cell fails: notify (default) sends you a notice and keeps the server,
              stop stops it anyway, keep does nothing.

        Uses $NGSCI_API_URL and $JUPYTERHUB_API_TOKEN, which ngsci servers have.
        """
        try:
            if cell is not None:
                return self._cell(line, cell)
            return self._line(line)
        except NgsciError as err:
            print(str(err), file=sys.stderr)
            return None

    # ---- line verbs

    def _line(self, line: str) -> Any:
        args = split_args(line)
        if not args or args[0] in ("help", "-h", "--help"):
            return Message(help_text())
        verb, rest = args[0], args[1:]
        handler = {
            "status": self._status,
            "usage": self._usage,
            "budget": self._budget,
            "stop": self._stop,
            "resize": self._resize,
            "notify": self._notify,
            "idle": self._idle,
            "preemption": self._preemption,
        }.get(verb)
        if handler is None:
            if verb == "stop_after":
                raise UsageError(
                    "stop_after is a cell magic: put %%ngsci stop_after on a cell's first line"
                )
            raise UsageError(f"unknown verb '{verb}'")
        return handler(rest)

    def _status(self, args: list[str]) -> Any:
        _, rest = take_options(args, {})
        if len(rest) > 1:
            raise UsageError("status takes at most a server name")
        api = self._api_factory()
        if rest:
            inst = api.get(f"/instances/{check_server(rest[0])}")
            return instance_table([inst], f"server {inst['server']}")
        me = api.get("/me")
        listed = api.get("/instances")
        title = (
            f"{me['name']}{' (admin)' if me.get('admin') else ''} · plan {me['plan']['label']}"
            f"{as_of(listed)}"
        )
        return instance_table(listed["instances"], title)

    def _usage(self, args: list[str]) -> Any:
        if args:
            raise UsageError("usage takes no arguments")
        u = self._api_factory().get("/usage")
        return Table(
            ["start", "size", "hours", "active h", "idle h", "cost"],
            [
                [
                    p["start"][:10],
                    p["size"],
                    format_hours(p["seconds"]),
                    format_hours(p["activeSeconds"]),
                    format_hours(p["idleSeconds"]),
                    format_micros(p["amountMicros"]),
                ]
                for p in u["series"]
            ],
            f"usage of {u['user']} from {u['from'][:10]} to {u['to'][:10]}: "
            f"{format_micros(u['totalMicros'])}{as_of(u)}",
            [idle] if (idle := gpu_idle_line(u.get("gpuIdle"))) else [],
        )

    def _budget(self, args: list[str]) -> Any:
        if args:
            raise UsageError("budget takes no arguments")
        b = self._api_factory().get("/budget")
        runs_out = (b.get("exhaustedAt") or "")[:16].replace("T", " ") or "not this month"
        today = (
            f", today {format_micros(b['spentTodayMicros'])}"
            if b.get("spentTodayMicros") is not None
            else ""
        )
        title = (
            f"{b['month']}: spent {format_micros(b['spentMicros'])}{today}, burning "
            f"{format_rate(b['burnMicrosPerHour'])}, runs out: {runs_out}{as_of(b)}"
        )
        return Table(
            ["budget", "limit", "spent", "used", "hard stop"],
            [
                [
                    s["kind"] + (f" {s['name']}" if s.get("name") else ""),
                    format_micros(s["budgetMicros"]),
                    format_micros(s["spentMicros"]),
                    f"{s['percent']}%",
                    "yes" if s["hardStop"] else "no",
                ]
                for s in b["budgets"]
            ],
            title,
        )

    def _stop(self, args: list[str]) -> Any:
        opts, rest = take_options(args, {"in": True, "cancel": False})
        if len(rest) > 1:
            raise UsageError("stop takes at most a server name")
        server = check_server(rest[0]) if rest else self.server
        if opts.get("cancel"):
            if self._pending_stop is None:
                return Message("no stop is scheduled")
            self._pending_stop.cancel()
            self._pending_stop = None
            return Message("the scheduled stop is cancelled")
        api = self._api_factory()
        if "in" in opts:
            delay = parse_duration(str(opts["in"]))
            api.get(f"/instances/{server}")  # a wrong server name fails now, not in ten minutes
            if self._pending_stop is not None:
                self._pending_stop.cancel()
            self._pending_stop = self._timer(delay, lambda: self._stop_later(api, server))
            return Message(
                f"server '{server}' stops in {duration(delay)}; "
                "%ngsci stop --cancel keeps it running"
            )
        try:
            inst = api.post(f"/instances/{server}/stop")
        except KeyboardInterrupt:
            # this kernel's own server stopped before the answer came: what was asked, no traceback
            return Message(f"server '{server}' is stopping; billing ends when it has stopped")
        return Message(
            f"server '{server}' ({inst['size']}) is stopping; billing ends when it has stopped"
        )

    def _stop_later(self, api: Api, server: str) -> None:
        self._pending_stop = None
        try:
            api.post(f"/instances/{server}/stop")
        except NgsciError as err:
            print(str(err), file=sys.stderr)

    def _resize(self, args: list[str]) -> Any:
        opts, rest = take_options(
            args, {"server": True, "keep-state": False, "yes": False, "cpu": True, "gpu": True}
        )
        body, size = machine_choice(rest, opts)
        server = check_server(str(opts["server"])) if "server" in opts else self.server
        if opts.get("yes") and not opts.get("keep-state"):
            raise UsageError("--yes goes with --keep-state")
        if opts.get("keep-state"):
            if server != self.server:
                raise UsageError("--keep-state keeps this server's variables: not with --server")
            return keep_state_resize(
                self._api_factory(), server, size, bool(opts.get("yes")), body=body
            )
        inst = self._api_factory().post(f"/instances/{server}/resize", body)
        return Message(
            f"resizing server '{server}' from {inst['size']} to {size}: this kernel stops with the "
            "server; reopen the notebook when the new size is running"
        )

    def _idle(self, args: list[str]) -> Any:
        """`%ngsci idle`: the idle timeout per size class; `%ngsci idle 45m` sets it."""
        opts, rest = take_options(args, {"cpu": False, "gpu": False})
        if len(rest) > 1:
            raise UsageError("idle takes one timeout, e.g. %ngsci idle 45m")
        api = self._api_factory()
        if not rest:
            if opts:
                raise UsageError("--cpu and --gpu go with a timeout, e.g. %ngsci idle 45m --gpu")
            t = api.get("/me/idle-timeout")
            title = f"idle timeout of {t['user']}"
        else:
            value = parse_idle_value(rest[0])
            both = not opts
            body: dict[str, Any] = {}
            if both or opts.get("cpu"):
                body["cpuSeconds"] = value
            if both or opts.get("gpu"):
                body["gpuSeconds"] = value
            t = api.request("PUT", "/me/idle-timeout", body)
            title = f"idle timeout of {t['user']} set"
        if t["cpu"]["clamped"] or t["gpu"]["clamped"]:
            title += " (an admin narrowed the bounds since you chose: the nearest bound applies)"
        return Table(
            ["sizes", "applies", "your choice", "you may choose"],
            [idle_row("CPU", t["cpu"]), idle_row("GPU", t["gpu"])],
            title,
        )

    def _preemption(self, args: list[str]) -> Any:
        """`%ngsci preemption`: the spot preemption default; with a choice (or flags) sets it."""
        opts, rest = take_options(
            args, {"clear": False, "keep-state": False, "no-keep-state": False}
        )
        if len(rest) > 1:
            raise UsageError("preemption takes one choice: on-demand, spot or stop")
        if rest and opts.get("clear"):
            raise UsageError("preemption: give a choice or --clear, not both")
        if opts.get("keep-state") and opts.get("no-keep-state"):
            raise UsageError("preemption: give --keep-state or --no-keep-state, not both")
        body: dict[str, Any] = {}
        if rest:
            choice = rest[0].strip().lower()
            if choice not in PREEMPTION_WORDS:
                raise UsageError(
                    f"preemption: the choice is on-demand, spot or stop, not '{rest[0]}'"
                )
            body["onPreemption"] = choice
        elif opts.get("clear"):
            body["onPreemption"] = None
        if opts.get("keep-state") or opts.get("no-keep-state"):
            body["keepState"] = bool(opts.get("keep-state"))
        api = self._api_factory()
        d = api.request("PUT", "/me/preemption", body) if body else api.get("/me/preemption")
        whose = "your default" if d["source"] == "user" else "the organisation's default"
        title = f"spot preemption default of {d['user']}{' set' if body else ''}"
        return Table(
            ["", "on spot preemption"],
            [
                ["applies", f"{PREEMPTION_WORDS[d['effective']]} ({whose})"],
                ["your default", PREEMPTION_WORDS[d["chosen"]] if d["chosen"] else "none"],
                ["organisation", PREEMPTION_WORDS[d["adminDefault"]]],
                [
                    "variables",
                    "saved at a spot notice, restored after the relaunch"
                    if d.get("keepState")
                    else "not kept (documents are saved)",
                ],
            ],
            title,
            ["A launch that chooses its own (--on-preemption) overrides both."],
        )

    def _notify(self, args: list[str]) -> Any:
        opts, rest = take_options(
            args, {"on-error": False, "off": False, "title": True, "level": True}
        )
        if opts.get("on-error"):
            if rest:
                raise UsageError("notify --on-error takes no message")
            if opts.get("off"):
                self._unregister_on_error()
                return Message("no more notices for failed cells")
            self._register_on_error()
            return Message(
                "you will get a notice whenever a cell fails "
                "(%ngsci notify --on-error --off stops it)"
            )
        if opts.get("off"):
            raise UsageError("--off goes with --on-error")
        if len(rest) != 1 or not rest[0].strip():
            raise UsageError(
                'notify needs one message in quotes, e.g. %ngsci notify "training done"'
            )
        level = str(opts.get("level", "info"))
        if level not in ("info", "warning", "error"):
            raise UsageError(f"--level must be info, warning or error, not '{level}'")
        body: dict[str, Any] = {"message": rest[0], "level": level, "server": self.server}
        if "title" in opts:
            body["title"] = str(opts["title"])
        self._api_factory().post("/notify", body)
        return Message("sent")

    # ---- failed cells

    def _register_on_error(self) -> None:
        if self._on_error_hook is not None or self.shell is None:
            return

        def post_run_cell(result: Any) -> None:
            error = result.error_in_exec or result.error_before_exec
            if error is None:
                return
            self._send_failure(getattr(result.info, "raw_cell", "") or "", error)

        self._on_error_hook = post_run_cell
        self.shell.events.register("post_run_cell", post_run_cell)

    def _unregister_on_error(self) -> None:
        if self._on_error_hook is not None and self.shell is not None:
            self.shell.events.unregister("post_run_cell", self._on_error_hook)
        self._on_error_hook = None

    def _send_failure(self, source: str, error: BaseException) -> None:
        first = next((ln.strip() for ln in source.splitlines() if ln.strip()), "")[:120]
        message = f"{type(error).__name__}: {error}"[:1500]
        if first:
            message += f"\n\nin the cell starting: {first}"
        try:
            self._api_factory().post(
                "/notify",
                {
                    "message": message,
                    "title": "A cell failed",
                    "level": "error",
                    "kind": "failure",
                    "server": self.server,
                },
            )
        except NgsciError as err:
            print(str(err), file=sys.stderr)

    # ---- %%ngsci stop_after

    def _cell(self, line: str, cell: str) -> Any:
        args = split_args(line)
        if not args or args[0] != "stop_after":
            raise UsageError(
                "the cell magic is %%ngsci stop_after [--on-error notify|stop|keep] [--grace 30s]"
            )
        opts, rest = take_options(args[1:], {"on-error": True, "server": True, "grace": True})
        if rest:
            raise UsageError(f"stop_after: unexpected argument '{rest[0]}'")
        grace = parse_duration(str(opts["grace"]), "--grace") if "grace" in opts else STOP_GRACE
        if grace > MAX_STOP_GRACE:
            raise UsageError(f"--grace must be at most {MAX_STOP_GRACE} s")
        on_error = str(opts.get("on-error", "notify"))
        if on_error not in ON_ERROR_CHOICES:
            raise UsageError(f"--on-error must be notify, stop or keep, not '{on_error}'")
        server = check_server(str(opts["server"])) if "server" in opts else self.server
        api = self._api_factory()  # fail before running the cell if ngsci is not configured
        if self.shell is None:
            raise NgsciError("no_shell", "stop_after needs an IPython shell")
        result = self.shell.run_cell(cell, store_history=False)
        failed = not result.success
        if failed and on_error == "keep":
            return None
        if failed and on_error == "notify":
            self._send_failure(
                cell, result.error_in_exec or result.error_before_exec or RuntimeError("failed")
            )
            print(
                f"ngsci: the cell failed, so server '{server}' keeps running; you have a notice",
                file=sys.stderr,
            )
            return None
        # The cell ran. From here on the server may stop under this kernel: nothing below may end
        # in a traceback (the old way blocked in urllib until the stop interrupted the kernel).
        # (a KeyboardInterrupt here is the stop reaching this kernel first: what was asked)
        with contextlib.suppress(KeyboardInterrupt):
            self._stop_after_cell(api, server, "failed" if failed else "finished", grace)
        return None

    def _stop_after_cell(self, api: Api, server: str, outcome: str, grace: int) -> None:
        """Announces the stop to the service and to the pages showing this kernel; returns at once.

        The service answers as soon as it has recorded the stop. The JupyterLab pages showing this
        kernel hear of it over a comm (`ngsci`), save every open document (this cell's output
        included) and confirm with a plain stop; with no page, the service stops the server when
        the grace is over. Another server named with --server stops at once.
        """
        try:
            api.post(
                "/notify",
                {
                    "message": f"The cell {outcome}; stopping server '{server}'.",
                    "title": "Stopping after the cell",
                    "level": "warning" if outcome == "failed" else "info",
                    "server": server,
                },
            )
        except NgsciError as err:
            print(str(err), file=sys.stderr)
        own = server == self.server
        if not own:
            api.post(f"/instances/{server}/stop")
            print(f"ngsci: the cell {outcome}; server '{server}' is stopping", flush=True)
            return
        api.post(
            f"/instances/{server}/stop",
            {"reason": "stop_after", "cell": outcome, "graceSeconds": grace},
        )
        # printed before the page hears of the stop, so the saved notebook has this line too
        print(
            f"ngsci: the cell {outcome}; this server ('{server}') stops once JupyterLab has saved "
            f"the open documents, within {grace} s",
            flush=True,
        )
        tell_pages(
            {
                "kind": "stop_after",
                "server": server,
                "cell": outcome,
                "graceSeconds": grace,
                "requestedAt": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "id": uuid.uuid4().hex,
            }
        )


def resize_args(body: Mapping[str, str] | None, size: str) -> str:
    """The arguments of `%ngsci resize` that ask for this machine again."""
    if body and "cpu" in body:
        return f"--cpu {body['cpu']} --gpu {body.get('gpu', 'none')}"
    return size


def keep_state_resize(
    api: Api,
    server: str,
    size: str,
    yes: bool,
    kernels: Callable[[], list[Any]] | None = None,
    body: dict[str, str] | None = None,
) -> Any:
    """`%ngsci resize SIZE --keep-state`: every notebook kernel of this server saves its variables
    (keep_state.py), then the resize. What cannot be kept is listed first, and nothing is resized
    without --yes."""
    from . import keep_state as ks

    try:
        targets = (kernels or ks.server_kernels)()
    except ks.KeepStateError as err:
        raise NgsciError(err.code, f"cannot keep the variables: {err.message}") from None
    headers = ["notebook", "variable", "type", "why it is not kept"]
    checked = [ks.run_in(t, "check") for t in targets]
    lost = ks.not_kept(checked)
    if lost and not yes:
        return Table(
            headers,
            lost,
            "Nothing was resized: these cannot be kept. Run %ngsci resize "
            f"{resize_args(body, size)} --keep-state "
            "--yes to resize without them (or del them, or close their files, first).",
        )
    saved = [ks.run_in(t, "save") for t in targets]
    kept = [a for a in saved if a.get("ok") and a.get("saved")]
    shown = {tuple(r) for r in lost}
    fresh = [r for r in ks.not_kept(saved) if tuple(r) not in shown]
    if fresh and not yes:
        for a in kept:
            ks.run_in(next(t for t in targets if t.path == a["path"]), "discard")
        return Table(
            headers,
            fresh,
            "Nothing was resized: since the check, these could not be saved. Run the resize again.",
        )
    names = [v["name"] for a in kept for v in a.get("kept", [])]
    size_on_disk = sum(int(a.get("bytesOnDisk", 0)) for a in kept)
    # said before the resize: the stop may interrupt this kernel before the service answers
    print(
        f"ngsci: saved {len(names)} variable{'' if len(names) == 1 else 's'} of {len(kept)} "
        f"notebook{'' if len(kept) == 1 else 's'} "
        f"({ks.format_bytes(size_on_disk)} in ~/.ngsci/state); they come back when the "
        "notebooks reopen on the new size",
        flush=True,
    )
    lost_now = ks.not_kept(saved)
    if lost_now:
        print(
            "ngsci: not kept: " + "; ".join(f"{r[0]}: {r[1]} ({r[3]})" for r in lost_now),
            flush=True,
        )
    try:
        inst = api.post(f"/instances/{server}/resize", body or {"size": size})
    except NgsciError:
        for a in kept:  # the resize was refused: the kernels still have their variables
            ks.run_in(next(t for t in targets if t.path == a["path"]), "discard")
        raise
    except KeyboardInterrupt:
        # this kernel's server stopped before the answer came: what was asked, no traceback
        return Message(f"resizing server '{server}' to {size}: this kernel stops with the server")
    return Message(
        f"resizing server '{server}' from {inst['size']} to {size}: this kernel stops with the "
        "server; reopen the notebook when the new size is running"
    )


COMM_TARGET = "ngsci"


def tell_pages(data: Mapping[str, Any]) -> bool:
    """Sends `data` to the JupyterLab pages that show this kernel (a comm they listen on).

    False outside a kernel (an IPython console) or when the comm cannot be opened: the service's
    grace stops the server anyway.
    """
    try:
        from comm import create_comm
    except ImportError:
        return False
    try:
        c = create_comm(target_name=COMM_TARGET, data=dict(data))
        c.close()
    except Exception:  # a page that does not hear of it changes nothing: the grace stops it
        return False
    return True


def help_text() -> str:
    """The help of `%ngsci?`, `%ngsci help` and the docs: the magic's docstring."""
    return inspect.cleandoc(NgsciMagics.ngsci.__doc__ or "")


def _daemon_timer(seconds: float, fn: Callable[[], None]) -> threading.Timer:
    t = threading.Timer(seconds, fn)
    t.daemon = True
    t.start()
    return t


def load_ipython_extension(ipython: Any) -> None:
    """`%load_ext ngsci_magic` (ngsci's single-user environment loads it by itself)."""
    ipython.register_magics(NgsciMagics(ipython))


def unload_ipython_extension(ipython: Any) -> None:
    pass
