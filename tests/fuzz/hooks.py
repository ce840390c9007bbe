"""Schemathesis hooks for fuzzing the ngsci service (tests/fuzz/run.ts loads them).

- ``no_stack_trace``: a check that fails when a response body carries a stack trace, an error
  trace or a file path of the machine (the service answers 500s "without details"; DESIGN.md).
- ``after_call``: records one line per request (operation, status) in ``NGSCI_FUZZ_RECORD`` so the
  runner counts the cases that really reached the service, and their statuses.
- ``flatmap_case``: sometimes replaces a generated ``user``, ``server``, ``id``, ``month``...
  by one that exists (the caller's own name, its server, rows the runner seeded), so requests
  reach the code behind the "not found" answers too.
"""

from __future__ import annotations

import json
import os
import re
import threading

import schemathesis
from hypothesis import strategies as st
from schemathesis.core.parameters import ParameterLocation

_RECORD = os.environ.get("NGSCI_FUZZ_RECORD")
_ROLE = os.environ.get("NGSCI_FUZZ_ROLE", "?")
_LOCK = threading.Lock()


def _known() -> dict[str, list[str]]:
    """Existing values per parameter name, from the runner: {"user": [...], "id": [...], ...}."""
    raw = os.environ.get("NGSCI_FUZZ_KNOWN", "{}")
    known = json.loads(raw)
    return {k: [str(v) for v in vs] for k, vs in known.items() if vs}


_KNOWN = _known()

# Absolute paths of this machine that must never reach a client (the repo, the data dir, ...).
_SECRET_PATHS = [p for p in os.environ.get("NGSCI_FUZZ_PATHS", "").split(os.pathsep) if p]

_TRACE_PATTERNS = [
    # V8 frames: "    at fn (/x/y.js:1:2)", "at async Promise.all (index 0)", "at file:///x.js:1:2"
    re.compile(r"\bat (?:async )?[\w$.<>\[\] ]*\(?(?:file://|node:|/)[^\s)]*:\d+(?::\d+)?\)?"),
    re.compile(r"(?m)^\s+at \S.*\(.*\)$"),
    # an exception's own text: "TypeError: x is undefined", "Error: ENOENT", "KeyError: 'a'"
    re.compile(r"\b(?:[A-Z]\w*)?(?:Error|Exception): \S"),
    # Python
    re.compile(r"Traceback \(most recent call last\)"),
    re.compile(r'File "[^"]+", line \d+'),
    # source files with a line number, wherever they live
    re.compile(r"[\w./-]+\.(?:ts|js|mjs|cjs|py|tsx)(?::\d+){1,2}\b"),
    # where code and data live on a machine
    re.compile(
        r"(?:/work/|/home/|/root/|/usr/(?:lib|local)/|/opt/|/var/lib/|node_modules/|site-packages/)"
    ),
]


def _request_text(case) -> str:
    """What the fuzzer itself sent: a match that only echoes it back is not the server's leak."""
    parts = [case.formatted_path or "", json.dumps(case.path_parameters or {}, default=str)]
    for part in (case.query, case.headers, case.body):
        if part is not None:
            try:
                parts.append(json.dumps(part, default=str, ensure_ascii=False))
            except Exception:  # noqa: BLE001
                parts.append(repr(part))
            parts.append(str(part))
    return "\n".join(parts)


def find_trace(body: str, sent: str = "") -> str | None:
    """The first piece of ``body`` that looks like a trace or a machine path, unless it was sent."""
    for p in _SECRET_PATHS:
        if p in body and p not in sent:
            return p
    for pattern in _TRACE_PATTERNS:
        for m in pattern.finditer(body):
            piece = m.group(0)
            # the service may quote what it was given (zod names the received value)
            if piece.strip() and piece.strip() not in sent and _unescaped(piece) not in sent:
                return piece
    return None


def _unescaped(s: str) -> str:
    try:
        return json.loads(f'"{s}"')
    except Exception:  # noqa: BLE001
        return s


@schemathesis.check
def no_stack_trace(ctx, response, case):
    """No stack trace, error trace or path of the server's machine in a response body."""
    try:
        body = response.text
    except Exception:  # noqa: BLE001
        body = response.content.decode("utf-8", "replace")
    if not body:
        return
    sent = _request_text(case)
    found = find_trace(body, sent)
    if found:
        raise AssertionError(f"the body carries a trace or a machine path: {found!r}")
    return


@schemathesis.hook
def after_call(context, case, response):
    if not _RECORD:
        return
    line = json.dumps(
        {
            "role": _ROLE,
            "op": f"{case.operation.method.upper()} {case.operation.path}",
            "status": response.status_code,
        }
    )
    with _LOCK, open(_RECORD, "a", encoding="utf-8") as f:
        f.write(line + "\n")


def _choices(key: str, generated) -> list:
    """Known values for a parameter, of the type that was generated (an integer id stays one)."""
    known = _KNOWN.get(key, [])
    if isinstance(generated, bool):
        return []
    if isinstance(generated, int):
        return [int(v) for v in known if str(v).isdigit()]
    return [str(v) for v in known]


@schemathesis.hook
def flatmap_case(context, case):
    """About half the valid cases ask for things that exist instead of what was generated.

    Only components generated valid are touched: a value swapped into a component generated
    invalid would make schemathesis expect a refusal for a request that is not invalid any more.
    """
    meta = getattr(case, "_meta", None)
    # the stateful phase follows links: the id it carries is the one just created, keep it
    if meta is not None and str(getattr(meta.phase, "name", "")).lower().endswith("stateful"):
        return st.just(case)
    slots = []
    for location, attr in (
        (ParameterLocation.QUERY, "query"),
        (ParameterLocation.PATH, "path_parameters"),
    ):
        values = getattr(case, attr, None)
        if not values or (meta is not None and meta.is_negative_at(location)):
            continue
        for key, generated in values.items():
            choices = _choices(key, generated)
            if choices:
                slots.append((attr, key, choices))
    if not slots:
        return st.just(case)

    @st.composite
    def swapped(draw):
        if draw(st.booleans()):
            for attr, key, choices in slots:
                if draw(st.booleans()):
                    getattr(case, attr)[key] = draw(st.sampled_from(choices))
        return case

    return swapped()
