"""Kernel variables that survive a resize: check, save and restore a kernel's user namespace.

Before a resize with "keep my variables" (`%ngsci resize SIZE --keep-state`, or the choice in
the sidebar's resize dialog) each Python kernel of the server saves its user namespace to the
persistent home, `~/.ngsci/state/<hash of the notebook's path>.pkl`; once the page is back on the
new size, the notebook's new kernel restores it and the snapshot is deleted.

- Serializer: dill (functions, lambdas and classes defined in the notebook travel by value);
  numpy arrays of a plain dtype go in numpy's own format (`.npy` records after the pickles), also
  inside other objects (a pandas DataFrame's blocks). Modules are kept as references: the restore
  imports them again.
- Each variable is pickled on its own, so one that fails is listed and the others are kept.
- Not kept, and listed before the user confirms: open files, sockets, generators (and other
  running frames), modules that cannot be imported again, whatever dill cannot serialize, and
  variables over `NGSCI_KEEP_STATE_MAX_MB` (default 2048 MB each). A snapshot that does not fit
  on the home volume is refused as a whole. A snapshot no notebook restored within
  `NGSCI_KEEP_STATE_DAYS` (default 14) is deleted the next time a notebook opens.
- The file is written to a temporary name and renamed (a crash leaves the old file or none),
  created with mode 0600 in a 0700 directory: only the user can read it.

The JupyterLab extension runs these functions in each kernel (silently, through
`user_expressions`: `*_json` functions return an object whose repr is JSON); so does the
machine's agent at a spot notice, through the server's kernel websockets (cli/src/agent); the
magic calls them directly. Only the standard library, dill and (when arrays are there) numpy are
imported.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import pickle
import queue
import re
import shutil
import socket
import struct
import sys
import tempfile
import types
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

FORMAT = b"NGSCI-KEEP-STATE\x01"
STATE_DIR_NAME = os.path.join(".ngsci", "state")
DEFAULT_MAX_MB = 2048
DEFAULT_KEEP_DAYS = 14
_SNAPSHOT_FILE = re.compile(r"^(?:[0-9a-f]{32}|\.tmp-.*)\.pkl$")
# arrays at least this large go in numpy's format; smaller ones stay in the pickle
NPY_MIN_BYTES = 64 * 1024
PROTOCOL = 4


class KeepStateError(Exception):
    """A failure of the snapshot as a whole (a bad setting, no room, an unreadable file)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# ---- where


def state_dir(env: Mapping[str, str] | None = None) -> str:
    """`~/.ngsci/state` in the user's home (the persistent volume that outlives a resize)."""
    env = os.environ if env is None else env
    home = env.get("HOME") or os.path.expanduser("~")
    return os.path.join(home, STATE_DIR_NAME)


def snapshot_name(path: str) -> str:
    """The snapshot's file name for a notebook path: a hash, so the name says nothing."""
    key = path.strip().lstrip("/")
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32] + ".pkl"


def snapshot_path(path: str, env: Mapping[str, str] | None = None) -> str:
    return os.path.join(state_dir(env), snapshot_name(path))


def max_bytes(env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    raw = env.get("NGSCI_KEEP_STATE_MAX_MB", "").strip()
    if not raw:
        return DEFAULT_MAX_MB * 1024 * 1024
    try:
        mb = float(raw)
    except ValueError:
        raise KeepStateError(
            "bad_setting", f"NGSCI_KEEP_STATE_MAX_MB must be a number of MB, not '{raw}'"
        ) from None
    if not mb > 0:
        raise KeepStateError("bad_setting", "NGSCI_KEEP_STATE_MAX_MB must be more than 0")
    return int(mb * 1024 * 1024)


def keep_seconds(env: Mapping[str, str] | None = None) -> float:
    """How long a snapshot nobody restored is kept (`NGSCI_KEEP_STATE_DAYS`, default 14 days)."""
    env = os.environ if env is None else env
    raw = env.get("NGSCI_KEEP_STATE_DAYS", "").strip()
    if not raw:
        return DEFAULT_KEEP_DAYS * 86400.0
    try:
        days = float(raw)
    except ValueError:
        raise KeepStateError(
            "bad_setting", f"NGSCI_KEEP_STATE_DAYS must be a number of days, not '{raw}'"
        ) from None
    if not days > 0:
        raise KeepStateError("bad_setting", "NGSCI_KEEP_STATE_DAYS must be more than 0")
    return days * 86400.0


def expire(env: Mapping[str, str] | None = None, now: float | None = None) -> int:
    """Deletes the snapshots (and a crashed save's temporary files) older than
    `NGSCI_KEEP_STATE_DAYS`: a notebook never reopened after its resize does not keep its
    variables on the home volume for ever. Returns how many files went."""
    directory = state_dir(env)
    cutoff = (datetime.now(timezone.utc).timestamp() if now is None else now) - keep_seconds(env)
    gone = 0
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return 0
    for name in names:
        if not _SNAPSHOT_FILE.match(name):
            continue
        target = os.path.join(directory, name)
        with contextlib.suppress(FileNotFoundError):
            if os.stat(target).st_mtime < cutoff:
                os.unlink(target)
                gone += 1
    return gone


# ---- which variables


def user_namespace() -> MutableMapping[str, Any]:
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None:
        raise KeepStateError("no_shell", "keeping variables needs an IPython kernel")
    return shell.user_ns


def _hidden() -> Mapping[str, Any]:
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:  # pragma: no cover - IPython is the magic's one dependency
        return {}
    return getattr(shell, "user_ns_hidden", {}) if shell is not None else {}


def user_variables(ns: Mapping[str, Any], hidden: Mapping[str, Any] | None = None) -> list[str]:
    """The names `%who` lists: not starting with `_`, not IPython's own (In, Out, exit...)."""
    hidden = _hidden() if hidden is None else hidden
    missing = object()
    return [
        k
        for k, v in ns.items()
        if not k.startswith("_") and hidden.get(k, missing) is not v and k.isidentifier()
    ]


def _namespace_ids(ns: Mapping[str, Any]) -> set[int]:
    """The dicts that are the notebook's globals: saved as a reference, restored as the new
    kernel's namespace (so a function defined in the notebook sees the restored variables)."""
    ids = {id(ns)}
    with contextlib.suppress(Exception):
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None and shell.user_ns is ns:
            ids.add(id(shell.user_global_ns))
            ids.add(id(shell.user_module.__dict__))
    return ids


def _describe(value: Any) -> str:
    t = type(value)
    return t.__name__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


def _never_kept(value: Any) -> str | None:
    """Why a value cannot be kept whatever its size, or None."""
    if isinstance(value, io.IOBase) or type(value).__name__ in ("TextIOWrapper", "BufferedReader"):
        return "an open file: open it again after the resize"
    if isinstance(value, socket.socket):
        return "a socket: connect again after the resize"
    if isinstance(value, (types.GeneratorType, types.AsyncGeneratorType, types.CoroutineType)):
        return "a generator or coroutine: its position cannot be saved"
    if isinstance(value, types.FrameType):
        return "a running frame"
    if isinstance(value, types.ModuleType) and _module_ref(value) is None:
        return "a module that cannot be imported again"
    return None


def _module_ref(module: types.ModuleType) -> str | None:
    name = getattr(module, "__name__", "")
    spec = getattr(module, "__spec__", None)
    if not name or name == "__main__" or spec is None or sys.modules.get(name) is not module:
        return None
    return name


# ---- the pickler: arrays out of band, modules by name, a size limit


class _TooLarge(Exception):
    pass


def _numpy() -> Any:
    return sys.modules.get("numpy")  # imported only when the kernel has it already


def _out_of_band(obj: Any) -> bool:
    np = _numpy()
    return (
        np is not None
        and type(obj) is np.ndarray
        and not obj.dtype.hasobject
        and obj.nbytes >= NPY_MIN_BYTES
    )


def _pickler_class() -> type:
    import dill

    class Pickler(dill.Pickler):
        def __init__(
            self, file: Any, ns: Any, arrays: list[Any], seen: dict[int, int], count: Any
        ) -> None:
            super().__init__(file, protocol=PROTOCOL)
            self.ns = ns
            self.arrays = arrays
            self.seen = seen
            self.count = count

        def persistent_id(self, obj: Any) -> Any:
            if id(obj) in self.ns:
                # the notebook's globals (of its functions): the new kernel's namespace
                return ("ns", None)
            if isinstance(obj, types.ModuleType):
                ref = _module_ref(obj)
                return ("module", ref) if ref else None
            if _out_of_band(obj):
                idx = self.seen.get(id(obj))
                if idx is None:
                    idx = len(self.arrays)
                    self.seen[id(obj)] = idx
                    self.arrays.append(obj)
                    self.count(obj.nbytes)
                return ("npy", idx)
            return None

    return Pickler


def _unpickler_class() -> type:
    import dill

    class Unpickler(dill.Unpickler):
        def __init__(self, file: Any, ns: Any, arrays: list[Any]) -> None:
            super().__init__(file)
            self.ns = ns
            self.arrays = arrays

        def persistent_load(self, pid: Any) -> Any:
            kind, ref = pid
            if kind == "ns":
                return self.ns
            if kind == "npy":
                return self.arrays[ref]
            if kind == "module":
                import importlib

                return importlib.import_module(ref)
            raise pickle.UnpicklingError(f"unknown reference {kind!r}")

    return Unpickler


# ---- check and save


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):,.1f} MB"


def _analyse(
    ns: Mapping[str, Any],
    names: Iterable[str],
    limit: int,
    keep_bytes: bool,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, bytes], list[Any], int]:
    """Pickles each variable (to a counter, or to bytes when saving); sorts kept from not kept."""
    kept: list[dict[str, Any]] = []
    problems: list[dict[str, Any]] = []
    blobs: dict[str, bytes] = {}
    arrays: list[Any] = []
    seen: dict[int, int] = {}
    total = 0
    try:
        Pickler = _pickler_class()
    except ImportError:
        raise KeepStateError(
            "no_dill", "dill is not installed in this kernel's environment (pip install dill)"
        ) from None
    spaces = _namespace_ids(ns)
    for name in names:
        value = ns[name]
        kind = _describe(value)
        reason = _never_kept(value)
        if reason is not None:
            problems.append({"name": name, "type": kind, "reason": reason})
            continue
        n_arrays = len(arrays)
        seen_before = dict(seen)
        array_bytes = [0]

        def count(n: int, array_bytes: list[int] = array_bytes) -> None:
            array_bytes[0] += n

        counter = _CountingSink(limit, array_bytes)
        sink: Any = io.BytesIO() if keep_bytes else counter
        try:
            p = Pickler(_Tee(sink, counter) if keep_bytes else sink, spaces, arrays, seen, count)
            p.dump(value)
            size = counter.n + array_bytes[0]
            if size > limit:
                raise _TooLarge
        except _TooLarge:
            del arrays[n_arrays:]
            seen.clear()
            seen.update(seen_before)
            problems.append(
                {
                    "name": name,
                    "type": kind,
                    "reason": f"over the size limit of {_mb(limit)} (NGSCI_KEEP_STATE_MAX_MB)",
                }
            )
            continue
        except Exception as err:  # whatever dill refuses is listed, never dropped silently
            del arrays[n_arrays:]
            seen.clear()
            seen.update(seen_before)
            text = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
            problems.append(
                {"name": name, "type": kind, "reason": f"cannot be serialized ({text})"}
            )
            continue
        kept.append({"name": name, "type": kind, "bytes": size})
        total += size
        if keep_bytes:
            blobs[name] = sink.getvalue()
    return kept, problems, blobs, arrays, total


class _CountingSink:
    """Counts the pickle's own bytes (arrays are counted apart) against the limit."""

    def __init__(self, limit: int, array_bytes: list[int]) -> None:
        self.n = 0
        self.limit = limit
        self.array_bytes = array_bytes

    def write(self, b: Any) -> int:
        size = memoryview(b).nbytes
        self.n += size
        if self.n + self.array_bytes[0] > self.limit:
            raise _TooLarge
        return size


class _Tee:
    def __init__(self, a: Any, b: Any) -> None:
        self.a = a
        self.b = b

    def write(self, data: Any) -> int:
        self.b.write(data)
        return self.a.write(data)


def _free_bytes(directory: str) -> int:
    probe = directory
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    return shutil.disk_usage(probe).free


def check(
    path: str,
    ns: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    hidden: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """What a save would keep and what it could not, without writing anything."""
    ns = user_namespace() if ns is None else ns
    limit = max_bytes(env)
    names = user_variables(ns, hidden)
    kept, problems, _, _, total = _analyse(ns, names, limit, keep_bytes=False)
    return _report(path, env, kept, problems, total)


def _report(
    path: str,
    env: Mapping[str, str] | None,
    kept: list[dict[str, Any]],
    problems: list[dict[str, Any]],
    total: int,
) -> dict[str, Any]:
    directory = state_dir(env)
    free = _free_bytes(directory)
    old = snapshot_path(path, env)
    with contextlib.suppress(OSError):
        free += os.path.getsize(old)  # replaced by the new one
    fits = total <= free
    report: dict[str, Any] = {
        "path": path,
        "file": snapshot_path(path, env),
        "kept": kept,
        "notKept": problems,
        "bytes": total,
        "freeBytes": free,
        "fits": fits,
    }
    if not fits:
        report["error"] = {
            "code": "no_room",
            "message": f"the variables need {_mb(total)} and the home volume has {_mb(free)} free",
        }
    return report


# the kernel's last save: (path, execution count, snapshot's mtime) and its report
_last_save: dict[str, tuple[int, int, dict[str, Any]]] = {}


def _execution_count() -> int | None:
    with contextlib.suppress(Exception):
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None:
            return int(shell.execution_count)
    return None


def save(
    path: str,
    ns: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    hidden: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Saves what can be kept to the snapshot of `path` (atomically, mode 0600); the report says
    what was kept and what was not.

    A second save of the kernel's own namespace with no cell run since (the machine's agent and
    the open page both saving at one spot notice) does not write again: the snapshot on disk is
    still this kernel's, so the first report comes back with `again: true`."""
    own = ns is None
    ns = user_namespace() if ns is None else ns
    count = _execution_count() if own else None
    if count is not None and path in _last_save:
        was_count, was_mtime, was_report = _last_save[path]
        with contextlib.suppress(OSError):
            if was_count == count and os.stat(snapshot_path(path, env)).st_mtime_ns == was_mtime:
                return {**was_report, "again": True}
    limit = max_bytes(env)
    names = user_variables(ns, hidden)
    kept, problems, blobs, arrays, total = _analyse(ns, names, limit, keep_bytes=True)
    report = _report(path, env, kept, problems, total)
    if not report["fits"]:
        raise KeepStateError(report["error"]["code"], report["error"]["message"])
    directory = state_dir(env)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    with contextlib.suppress(OSError):
        os.chmod(directory, 0o700)
    target = snapshot_path(path, env)
    header = pickle.dumps(
        {
            "path": path,
            "savedAt": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "python": sys.version.split()[0],
            "variables": blobs,
            "types": {k["name"]: k["type"] for k in kept},
            "arrays": len(arrays),
            # which kernel saved it: a restore there (the resize did not happen) discards it
            "instance": (env or os.environ).get("NGSCI_INSTANCE_ID", ""),
            "host": socket.gethostname(),
            "pid": os.getpid(),
        },
        protocol=PROTOCOL,
    )
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".pkl", dir=directory)  # mode 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(FORMAT)
            f.write(struct.pack("<Q", len(header)))
            f.write(header)
            if arrays:
                np = _numpy()
                for a in arrays:
                    np.lib.format.write_array(f, a, allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    report["saved"] = True
    report["bytesOnDisk"] = os.path.getsize(target)
    if count is not None:
        _last_save[path] = (count, os.stat(target).st_mtime_ns, dict(report))
    return report


# ---- restore


def restore(
    path: str,
    ns: MutableMapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Puts the snapshot of `path` back into the namespace and deletes it. No snapshot: found
    false. A variable that cannot be loaded here is listed (the others are restored)."""
    target = snapshot_path(path, env)
    report: dict[str, Any] = {"path": path, "found": False, "restored": [], "notRestored": []}
    # every notebook that opens looks for its snapshot: the moment to let old ones go
    expired = expire(env)
    if expired:
        report["expired"] = expired
    if not os.path.exists(target):
        return report
    ns = user_namespace() if ns is None else ns
    report["found"] = True
    try:
        Unpickler = _unpickler_class()
    except ImportError:
        raise KeepStateError(
            "no_dill", "dill is not installed in this kernel's environment (pip install dill)"
        ) from None
    with open(target, "rb") as f:
        if f.read(len(FORMAT)) != FORMAT:
            raise KeepStateError("bad_snapshot", f"{target} is not an ngsci snapshot")
        (length,) = struct.unpack("<Q", f.read(8))
        header = pickle.loads(f.read(length))  # noqa: S301 (the user's own 0600 file)
        arrays: list[Any] = []
        if header["arrays"]:
            import numpy as np

            arrays = [
                np.lib.format.read_array(f, allow_pickle=False) for _ in range(header["arrays"])
            ]
    if _saved_here(header, env):
        # made on this machine (the resize was refused or not made): its kernel has had the
        # variables since, newer than the snapshot's
        os.unlink(target)
        report["found"] = False
        report["discarded"] = "saved on this same machine: the resize did not happen"
        return report
    for name, blob in header["variables"].items():
        try:
            ns[name] = Unpickler(io.BytesIO(blob), ns, arrays).load()
            report["restored"].append({"name": name, "type": header["types"].get(name, "")})
        except Exception as err:
            text = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
            report["notRestored"].append(
                {
                    "name": name,
                    "type": header["types"].get(name, ""),
                    "reason": f"cannot be loaded here ({text})",
                }
            )
    report["savedAt"] = header.get("savedAt")
    os.unlink(target)
    return report


def _saved_here(header: Mapping[str, Any], env: Mapping[str, str] | None) -> bool:
    instance = (env or os.environ).get("NGSCI_INSTANCE_ID", "")
    if instance and header.get("instance"):
        # a snapshot is for the next instance: on the one that made it, the resize did not happen
        return bool(header["instance"] == instance)
    return bool(header.get("host") == socket.gethostname() and header.get("pid") == os.getpid())


def discard(path: str, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Deletes the snapshot of `path` (a resize that was not made after all)."""
    target = snapshot_path(path, env)
    try:
        os.unlink(target)
    except FileNotFoundError:
        return {"path": path, "found": False}
    return {"path": path, "found": True}


# ---- for the JupyterLab extension (user_expressions) and the magic's other kernels


class JsonResult:
    """A result whose repr is JSON, so `user_expressions` carries it as text/plain."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = dict(data)

    def __repr__(self) -> str:
        return json.dumps(self.data, separators=(",", ":"))

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(repr(self))


def _json(fn: Any, path: str) -> JsonResult:
    try:
        return JsonResult({"ok": True, **fn(path)})
    except KeepStateError as err:
        return JsonResult({"ok": False, "path": path, "code": err.code, "message": err.message})
    except Exception as err:
        return JsonResult(
            {"ok": False, "path": path, "code": "failed", "message": f"{type(err).__name__}: {err}"}
        )


def check_json(path: str) -> JsonResult:
    return _json(check, path)


def save_json(path: str) -> JsonResult:
    return _json(save, path)


def restore_json(path: str) -> JsonResult:
    return _json(restore, path)


def discard_json(path: str) -> JsonResult:
    return _json(discard, path)


# ---- every kernel of this server (the magic: `%ngsci resize SIZE --keep-state`)

VERBS = {"check": check, "save": save, "restore": restore, "discard": discard}
TIMEOUTS = {"check": 120.0, "save": 600.0, "restore": 600.0, "discard": 30.0}


@dataclass
class KernelTarget:
    """One kernel of this server: its session's path, and how to reach it."""

    path: str
    label: str
    kind: str  # notebook | console | other
    python: bool
    busy: bool
    kernel_id: str
    own: bool


def own_kernel_id() -> str | None:
    """This kernel's id (its connection file is kernel-<id>.json), or None outside a kernel."""
    try:
        from ipykernel.connect import get_connection_file

        name = os.path.basename(get_connection_file())
    except Exception:
        return None
    m = re.fullmatch(r"kernel-(.+)\.json", name)
    return m.group(1) if m else None


def _language(kernel_name: str) -> str:
    try:
        from jupyter_client.kernelspec import KernelSpecManager

        return str(KernelSpecManager().get_kernel_spec(kernel_name).language).lower()
    except Exception:
        return ""


def server_kernels(
    env: Mapping[str, str] | None = None, timeout: float = 10.0
) -> list[KernelTarget]:
    """The server's sessions (its own REST API, with the server's token: JupyterHub gives that
    token access to its own server), each with its kernel."""
    env = os.environ if env is None else env
    base = env.get("JUPYTERHUB_SERVICE_URL", "")
    token = env.get("JUPYTERHUB_API_TOKEN", "")
    if not base or not token:
        raise KeepStateError(
            "not_configured", "JUPYTERHUB_SERVICE_URL and JUPYTERHUB_API_TOKEN are not both set"
        )
    req = urllib.request.Request(  # noqa: S310 (the server's own http URL)
        base.rstrip("/") + "/api/sessions",
        headers={"Authorization": f"token {token}", "Accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as res:  # noqa: S310
            data = json.loads(res.read())
    except (urllib.error.URLError, OSError, ValueError) as err:
        raise KeepStateError(
            "no_sessions", f"cannot list this server's kernels ({getattr(err, 'reason', err)})"
        ) from None
    if not isinstance(data, list):
        raise KeepStateError("no_sessions", "this server's session list is not a list")
    own = own_kernel_id()
    out: list[KernelTarget] = []
    for s in data:
        kernel = s.get("kernel") if isinstance(s, dict) else None
        if not isinstance(kernel, dict) or not isinstance(kernel.get("id"), str):
            continue
        path = str(s.get("path") or "")
        kind = str(s.get("type") or "")
        out.append(
            KernelTarget(
                path=path,
                label=os.path.basename(path)
                if kind == "notebook"
                else f"{kind or 'kernel'} {path}",
                kind=kind if kind in ("notebook", "console") else "other",
                python=_language(str(kernel.get("name") or "")) == "python",
                busy=kernel.get("execution_state") == "busy" and kernel["id"] != own,
                kernel_id=kernel["id"],
                own=kernel["id"] == own,
            )
        )
    return out


def _in_other_kernel(kernel_id: str, expression: str, timeout: float) -> dict[str, Any]:
    """Evaluates an expression in another kernel of this server (its connection file, as the
    server wrote it), silently: no output, no history."""
    from jupyter_client import BlockingKernelClient
    from jupyter_core.paths import jupyter_runtime_dir

    cf = os.path.join(jupyter_runtime_dir(), f"kernel-{kernel_id}.json")
    if not os.path.exists(cf):
        raise KeepStateError("no_kernel", "its connection file is not there")
    kc = BlockingKernelClient(connection_file=cf)
    kc.load_connection_file()
    kc.start_channels()
    try:
        msg_id = kc.execute(
            "",
            silent=True,
            store_history=False,
            user_expressions={"ngsci": expression},
            allow_stdin=False,
            stop_on_error=False,
        )
        import time

        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise KeepStateError("no_answer", f"no answer within {round(timeout)} s")
            with contextlib.suppress(queue.Empty):
                reply = kc.get_shell_msg(timeout=left)
                if reply.get("parent_header", {}).get("msg_id") == msg_id:
                    break
    finally:
        kc.stop_channels()
    out = reply["content"].get("user_expressions", {}).get("ngsci", {})
    if out.get("status") != "ok":
        raise KeepStateError("failed", f"{out.get('ename', 'error')}: {out.get('evalue', '')}")
    parsed = json.loads(out["data"]["text/plain"])
    if not isinstance(parsed, dict):
        raise KeepStateError("bad_answer", "the kernel answered nothing usable")
    return parsed


def expression_for(verb: str, path: str) -> str:
    """The user expression that runs `verb` for a notebook in a kernel (as the extension's)."""
    return f"__import__('{__name__}', fromlist=['_']).{verb}_json({json.dumps(path)})"


def run_in(target: KernelTarget, verb: str) -> dict[str, Any]:
    """Runs a step (check, save, restore, discard) in one kernel of the server; a failure is the
    answer's `ok: false` with a message, never an exception."""
    base = {"path": target.path, "label": target.label}
    if target.kind != "notebook":
        what = "a console" if target.kind == "console" else "a kernel without a notebook"
        return {
            **base,
            "ok": False,
            "code": "not_a_notebook",
            "message": f"{what}: only notebooks' variables are kept",
        }
    if not target.python:
        return {
            **base,
            "ok": False,
            "code": "not_python",
            "message": "not a Python kernel: its variables are not kept",
        }
    if target.busy and verb in ("check", "save"):
        return {
            **base,
            "ok": False,
            "code": "busy",
            "message": "running a cell: its variables can be kept once it is idle",
        }
    if target.own:
        return {**base, **_json(VERBS[verb], target.path).data}
    try:
        answer = _in_other_kernel(
            target.kernel_id, expression_for(verb, target.path), TIMEOUTS[verb]
        )
        return {**base, **answer}
    except KeepStateError as err:
        return {**base, "ok": False, "code": err.code, "message": err.message}
    except Exception as err:
        return {**base, "ok": False, "code": "failed", "message": f"{type(err).__name__}: {err}"}


def not_kept(answers: Iterable[Mapping[str, Any]]) -> list[list[str]]:
    """Rows [notebook, variable, type, why] of everything an answer says is not kept."""
    rows: list[list[str]] = []
    for a in answers:
        if not a.get("ok"):
            rows.append([a["label"], "(all)", "", str(a.get("message", "failed"))])
            continue
        if a.get("error"):
            rows.append([a["label"], "(all)", "", str(a["error"].get("message", ""))])
        rows.extend(
            [a["label"], v["name"], v.get("type", ""), v["reason"]] for v in a.get("notKept", [])
        )
    return rows


def format_bytes(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024**2:
        return f"{n / 1024:.1f} KB"
    if n < 1024**3:
        return f"{n / 1024**2:.1f} MB"
    return f"{n / 1024**3:.2f} GB"
