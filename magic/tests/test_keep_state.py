"""Kernel variables kept across a resize (ngsci_magic/keep_state.py).

The round trip runs in real IPython kernels (jupyter_client): one kernel saves, a second one (the
"new size") restores, as after a resize; the rest drives the module in-process.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell

from ngsci_magic import keep_state as ks
from ngsci_magic.magic import NgsciMagics, Table

jupyter_client = pytest.importorskip("jupyter_client")
np = pytest.importorskip("numpy")
pytest.importorskip("pandas")

NOTEBOOK = "work/analysis.ipynb"


# ---- in real kernels


class Kernel:
    def __init__(self, env: dict[str, str]) -> None:
        from jupyter_client.manager import KernelManager

        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(env=env)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)

    def run(self, code: str) -> str:
        out: list[str] = []

        def hook(msg: dict[str, Any]) -> None:
            c = msg["content"]
            if msg["msg_type"] == "stream":
                out.append(c["text"])
            elif msg["msg_type"] == "error":
                out.append(f"{c['ename']}: {c['evalue']}")

        reply = self.kc.execute_interactive(code, output_hook=hook, timeout=120)
        text = "".join(out)
        assert reply["content"]["status"] == "ok", text
        return text

    def stop(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "home"
    h.mkdir()
    return h


def kernel_env(home: Path, instance: str, **more: str) -> dict[str, str]:
    return {**os.environ, "HOME": str(home), "NGSCI_INSTANCE_ID": instance, **more}


DEFINE = """
import numpy as np, pandas as pd, socket
x = 42
arr = np.arange(500_000, dtype="float64")
same = arr
df = pd.DataFrame({"a": np.arange(50_000), "b": ["text"] * 50_000})
def plus_x(y):
    return y + x
class Point:
    def __init__(self, v):
        self.v = v
    def shifted(self):
        return plus_x(self.v)
p = Point(3)
fh = open(__import__("os").devnull)
gen = (i for i in range(3))
sock = socket.socket()
"""


def test_a_new_kernel_gets_back_what_the_old_one_saved(home: Path) -> None:
    old = Kernel(kernel_env(home, "i-old"))
    try:
        old.run(DEFINE)
        checked = json.loads(
            old.run(f"from ngsci_magic import keep_state as _k; print(_k.check_json({NOTEBOOK!r}))")
        )
        assert checked["ok"]
        kept = {v["name"] for v in checked["kept"]}
        assert {"x", "arr", "same", "df", "plus_x", "Point", "p", "np", "pd"} <= kept
        why = {v["name"]: v["reason"] for v in checked["notKept"]}
        assert set(why) == {"fh", "gen", "sock"}, "each thing that cannot be kept is listed"
        assert "open file" in why["fh"]
        assert "generator" in why["gen"]
        assert "socket" in why["sock"]
        saved = json.loads(old.run(f"print(_k.save_json({NOTEBOOK!r}))"))
        assert saved["ok"]
        assert saved["saved"]
    finally:
        old.stop()

    snapshot = Path(ks.snapshot_path(NOTEBOOK, {"HOME": str(home)}))
    assert snapshot.parent == home / ".ngsci" / "state"
    assert stat.S_IMODE(snapshot.stat().st_mode) == 0o600, "only the user can read it"
    assert stat.S_IMODE(snapshot.parent.stat().st_mode) == 0o700
    assert [p.name for p in snapshot.parent.iterdir()] == [snapshot.name], "no temporary left"
    raw = snapshot.read_bytes()
    assert b"\x93NUMPY" in raw, "large arrays are stored in numpy's own format"
    assert NOTEBOOK.encode() not in snapshot.name.encode()

    new = Kernel(kernel_env(home, "i-new"))
    try:
        restored = json.loads(
            new.run(
                f"from ngsci_magic import keep_state as _k; print(_k.restore_json({NOTEBOOK!r}))"
            )
        )
        assert restored["found"]
        assert restored["notRestored"] == []
        out = new.run(
            "print(x, arr.sum(), same is arr, df.shape, df.b[7], plus_x(1), p.shifted(),"
            " isinstance(p, Point), np.__name__)\n"
            "x = 100\n"
            "print(plus_x(1))"
        )
        assert out.splitlines() == [
            "42 124999750000.0 True (50000, 2) text 43 45 True numpy",
            "101",
        ], "the notebook's functions see the restored variables (its namespace, not a copy)"
        assert not snapshot.exists(), "the snapshot is deleted after the restore"
        again = json.loads(new.run(f"print(_k.restore_json({NOTEBOOK!r}))"))
        assert again["found"] is False
    finally:
        new.stop()


# ---- in-process


@pytest.fixture
def env(home: Path) -> dict[str, str]:
    return {"HOME": str(home), "NGSCI_INSTANCE_ID": "i-1"}


def test_variables_over_the_size_limit_are_listed_and_the_rest_kept(env: dict[str, str]) -> None:
    env["NGSCI_KEEP_STATE_MAX_MB"] = "1"
    ns = {"small": np.zeros(1000), "big": np.zeros(300_000), "n": 5, "_hidden": 1}
    report = ks.save(NOTEBOOK, ns, env, hidden={})
    assert [v["name"] for v in report["kept"]] == ["small", "n"]
    assert report["notKept"] == [
        {
            "name": "big",
            "type": "numpy.ndarray",
            "reason": "over the size limit of 1.0 MB (NGSCI_KEEP_STATE_MAX_MB)",
        }
    ]
    back: dict[str, Any] = {}
    ks.restore(NOTEBOOK, back, {**env, "NGSCI_INSTANCE_ID": "i-2"})
    assert sorted(back) == ["n", "small"]


def test_a_bad_size_limit_is_refused_with_a_clear_error(env: dict[str, str]) -> None:
    env["NGSCI_KEEP_STATE_MAX_MB"] = "lots"
    with pytest.raises(ks.KeepStateError) as err:
        ks.check(NOTEBOOK, {"n": 1}, env, hidden={})
    assert err.value.code == "bad_setting"
    answer = json.loads(repr(ks._json(lambda p: ks.check(p, {"n": 1}, env, {}), NOTEBOOK)))
    assert answer == {
        "ok": False,
        "path": NOTEBOOK,
        "code": "bad_setting",
        "message": "NGSCI_KEEP_STATE_MAX_MB must be a number of MB, not 'lots'",
    }


def test_no_room_on_the_home_volume_saves_nothing(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ks, "_free_bytes", lambda _d: 1000)
    ns = {"arr": np.zeros(100_000)}
    report = ks.check(NOTEBOOK, ns, env, hidden={})
    assert report["fits"] is False
    assert report["error"]["code"] == "no_room"
    with pytest.raises(ks.KeepStateError):
        ks.save(NOTEBOOK, ns, env, hidden={})
    assert not os.path.exists(ks.snapshot_path(NOTEBOOK, env))


def test_a_failed_write_leaves_the_previous_snapshot_whole(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ks.save(NOTEBOOK, {"v": 1}, env, hidden={})
    before = Path(ks.snapshot_path(NOTEBOOK, env)).read_bytes()

    def crash(_a: str, _b: str) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(ks.os, "replace", crash)
    with pytest.raises(OSError, match="disk gone"):
        ks.save(NOTEBOOK, {"v": 2}, env, hidden={})
    monkeypatch.undo()
    assert Path(ks.snapshot_path(NOTEBOOK, env)).read_bytes() == before
    assert len(os.listdir(ks.state_dir(env))) == 1, "the temporary file is removed"


def test_a_variable_that_cannot_be_loaded_is_listed_and_the_others_restored(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "mylib_h7.py").write_text("class Model:\n    def __init__(self):\n        self.w = 1\n")
    monkeypatch.syspath_prepend(str(lib))
    import mylib_h7  # type: ignore[import-not-found]

    ks.save(NOTEBOOK, {"model": mylib_h7.Model(), "n": 3}, env, hidden={})
    # the new machine has no mylib_h7
    del sys.modules["mylib_h7"]
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(lib)])
    back: dict[str, Any] = {}
    report = ks.restore(NOTEBOOK, back, {**env, "NGSCI_INSTANCE_ID": "i-2"})
    assert back == {"n": 3}
    assert [v["name"] for v in report["notRestored"]] == ["model"]
    assert "mylib_h7" in report["notRestored"][0]["reason"]


def test_on_the_machine_that_saved_it_a_snapshot_is_discarded_not_restored(
    env: dict[str, str],
) -> None:
    ks.save(NOTEBOOK, {"v": 1}, env, hidden={})
    ns: dict[str, Any] = {"v": 2}
    report = ks.restore(NOTEBOOK, ns, env)  # the same instance: the resize did not happen
    assert report["found"] is False
    assert ns == {"v": 2}, "the kernel's own newer values stay"
    assert not os.path.exists(ks.snapshot_path(NOTEBOOK, env))


def test_snapshots_of_two_notebooks_do_not_mix(env: dict[str, str]) -> None:
    ks.save("a.ipynb", {"v": "a"}, env, hidden={})
    ks.save("b.ipynb", {"v": "b"}, env, hidden={})
    nb: dict[str, Any] = {}
    ks.restore("b.ipynb", nb, {**env, "NGSCI_INSTANCE_ID": "i-2"})
    assert nb == {"v": "b"}


def test_a_snapshot_never_restored_expires_after_the_days_set(env: dict[str, str]) -> None:
    env["NGSCI_KEEP_STATE_DAYS"] = "2"
    ks.save("old.ipynb", {"v": "old"}, env, hidden={})
    ks.save("fresh.ipynb", {"v": "fresh"}, env, hidden={})
    state = Path(ks.state_dir(env))
    leftover = state / ".tmp-crashed.pkl"
    leftover.write_bytes(b"half a save")
    other = state / "notes.txt"
    other.write_text("not ngsci's")
    three_days_ago = os.path.getmtime(ks.snapshot_path("old.ipynb", env)) - 3 * 86400
    for p in (Path(ks.snapshot_path("old.ipynb", env)), leftover, other):
        os.utime(p, (three_days_ago, three_days_ago))
    # opening any notebook (its restore) lets the old snapshot and the crashed save's file go
    report = ks.restore("another.ipynb", {}, {**env, "NGSCI_INSTANCE_ID": "i-2"})
    assert report["found"] is False
    assert report["expired"] == 2
    assert not os.path.exists(ks.snapshot_path("old.ipynb", env))
    assert not leftover.exists()
    assert other.exists(), "only ngsci's snapshot files are touched"
    back: dict[str, Any] = {}
    ks.restore("fresh.ipynb", back, {**env, "NGSCI_INSTANCE_ID": "i-2"})
    assert back == {"v": "fresh"}, "a snapshot younger than the limit is restored"


def test_a_bad_expiry_setting_is_refused_with_a_clear_error(env: dict[str, str]) -> None:
    env["NGSCI_KEEP_STATE_DAYS"] = "0"
    with pytest.raises(ks.KeepStateError) as err:
        ks.restore(NOTEBOOK, {}, env)
    assert err.value.code == "bad_setting"
    assert "NGSCI_KEEP_STATE_DAYS must be more than 0" in err.value.message


# ---- %ngsci resize SIZE --keep-state


class FakeApi:
    def __init__(self) -> None:
        self.posts: list[tuple[str, Any]] = []

    def post(self, path: str, body: Any = None) -> Any:
        self.posts.append((path, body))
        return {"size": "cpu-small"}


@pytest.fixture
def shell(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InteractiveShell]:
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("NGSCI_INSTANCE_ID", "i-1")
    sh = InteractiveShell.instance()
    target = ks.KernelTarget(
        path=NOTEBOOK,
        label="analysis.ipynb",
        kind="notebook",
        python=True,
        busy=False,
        kernel_id="k1",
        own=True,
    )
    console = ks.KernelTarget(
        path="console-1",
        label="console console-1",
        kind="console",
        python=True,
        busy=False,
        kernel_id="k2",
        own=False,
    )
    monkeypatch.setattr(ks, "server_kernels", lambda: [target, console])
    yield sh
    for name in ("kept_value", "fh"):
        sh.user_ns.pop(name, None)


def test_the_magic_lists_what_cannot_be_kept_and_resizes_only_when_told(
    shell: InteractiveShell, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api = FakeApi()
    shell.register_magics(NgsciMagics(shell, api_factory=lambda: api, env={}))
    shell.user_ns["kept_value"] = 7
    shell.user_ns["fh"] = open(os.devnull)  # noqa: SIM115
    try:
        out = shell.run_line_magic("ngsci", "resize cpu-large --keep-state")
        assert isinstance(out, Table)
        text = repr(out)
        assert "Nothing was resized" in text
        assert "fh" in text
        assert "an open file" in text
        assert "console console-1" in text
        assert "only notebooks' variables are kept" in text
        assert api.posts == [], "nothing is resized before the user confirms"
        assert not os.path.exists(ks.snapshot_path(NOTEBOOK))

        capsys.readouterr()
        msg = repr(shell.run_line_magic("ngsci", "resize cpu-large --keep-state --yes"))
        assert api.posts == [("/instances/default/resize", {"size": "cpu-large"})]
        assert msg.startswith("resizing server 'default' from cpu-small to cpu-large")
        said = capsys.readouterr().out
        assert "ngsci: saved 1 variable of 1 notebook (" in said
        assert "ngsci: not kept: analysis.ipynb: fh (an open file" in said
    finally:
        shell.user_ns["fh"].close()
    back: dict[str, Any] = {}
    ks.restore(NOTEBOOK, back, {"HOME": str(home), "NGSCI_INSTANCE_ID": "i-2"})
    assert back["kept_value"] == 7
    assert "fh" not in back


def test_the_magic_refuses_keep_state_for_another_server_and_yes_alone(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    api = FakeApi()
    shell.register_magics(NgsciMagics(shell, api_factory=lambda: api, env={}))
    shell.run_line_magic("ngsci", "resize cpu-large --keep-state --server other")
    shell.run_line_magic("ngsci", "resize cpu-large --yes")
    err = capsys.readouterr().err
    assert "--keep-state keeps this server's variables: not with --server" in err
    assert "--yes goes with --keep-state" in err
    assert api.posts == []
