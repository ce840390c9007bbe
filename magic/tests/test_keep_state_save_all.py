"""The save the machine's agent runs at a spot notice, seen from the kernel: the agent sends each
notebook's kernel a silent execute_request whose user expression is `save_json(path)`
(cli/src/agent/keep-state.ts `saveExpression`); ipykernel evaluates it with the shell's
`user_expressions`, and the agent reads the text/plain repr as JSON. A second save with no cell
run since (the agent and an open page both saving at one notice) does not write again."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell

from ngsci_magic import keep_state as ks


def agent_expression(path: str) -> str:
    """The agent's expression, as cli/src/agent/keep-state.ts builds it (a JSON string literal)."""
    return (
        "__import__('ngsci_magic.keep_state', fromlist=['keep_state'])"
        f".save_json({json.dumps(path)})"
    )


def evaluate(sh: InteractiveShell, expression: str) -> dict[str, Any]:
    """What ipykernel puts in the execute_reply's user_expressions for the agent."""
    out = sh.user_expressions({"ngsci": expression})["ngsci"]
    assert out["status"] == "ok", out
    parsed: dict[str, Any] = json.loads(out["data"]["text/plain"])
    return parsed


def test_the_agents_expression_saves_and_answers_json_the_agent_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("NGSCI_INSTANCE_ID", "i-spot")
    sh = InteractiveShell.instance()
    sh.run_cell("agent_x = 42\nagent_fh = open('/dev/null')")
    try:
        answer = evaluate(sh, agent_expression('work/a "b".ipynb'))
        assert answer["ok"] is True
        kept = {v["name"]: v["type"] for v in answer["kept"]}
        assert kept.get("agent_x") == "int"
        reasons = {v["name"]: v["reason"] for v in answer["notKept"]}
        assert reasons["agent_fh"].startswith("an open file")
        assert all({"name", "type", "reason"} <= set(v) for v in answer["notKept"])
        snapshot = Path(answer["file"])
        assert snapshot.name == ks.snapshot_name('work/a "b".ipynb')
        assert snapshot.stat().st_mode & 0o777 == 0o600

        # a failure is an answer too: ok false with a code and a message, never an exception
        monkeypatch.setenv("NGSCI_KEEP_STATE_MAX_MB", "lots")
        bad = evaluate(sh, agent_expression("other.ipynb"))
        assert (bad["ok"], bad["code"]) == (False, "bad_setting")
        assert "NGSCI_KEEP_STATE_MAX_MB" in bad["message"]
    finally:
        sh.user_ns.pop("agent_x", None)
        fh = sh.user_ns.pop("agent_fh", None)
        if fh is not None:
            fh.close()


def test_a_second_save_with_no_cell_run_since_does_not_write_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("NGSCI_INSTANCE_ID", "i-spot")
    sh = InteractiveShell.instance()
    sh.run_cell("spot_x = 42", store_history=True)
    try:
        first = ks.save("n.ipynb")
        target = Path(first["file"])
        mtime = target.stat().st_mtime_ns
        # the agent's save after the page's: the same report, nothing written
        second = evaluate(sh, agent_expression("n.ipynb"))
        assert second.get("again") is True
        assert target.stat().st_mtime_ns == mtime
        assert [v["name"] for v in second["kept"]] == [v["name"] for v in first["kept"]]
        # a cell ran since: the next save writes the new value
        # (a notebook's cells count, as they do in a kernel)
        sh.run_cell("spot_x = 43", store_history=True)
        third = ks.save("n.ipynb")
        assert "again" not in third
        ns: dict[str, Any] = {}
        ks.restore("n.ipynb", ns, env={"HOME": str(home), "NGSCI_INSTANCE_ID": "other"})
        assert ns["spot_x"] == 43
    finally:
        sh.user_ns.pop("spot_x", None)
