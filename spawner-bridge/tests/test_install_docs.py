"""docs/install.md's `jupyterhub_config.py` block runs as written: a real JupyterHub loads it.

The block is taken from the page itself, so the guide cannot drift from what works (it once used
`os.environ` without `import os`). Only `/srv/ngsci` is pointed at a temporary directory.
"""

from __future__ import annotations

import logging
import re
import stat
from pathlib import Path

import pytest
from jupyterhub import orm, scopes
from jupyterhub.app import JupyterHub
from traitlets.config import Config

from ngsci_spawner import NgsciSpawner

INSTALL = Path(__file__).resolve().parents[2] / "docs" / "install.md"


def config_blocks() -> list[str]:
    blocks = re.findall(r"```python\n(.*?)```", INSTALL.read_text(), flags=re.S)
    return [b for b in blocks if "configure_hub(" in b]


def test_the_guide_has_a_config_block():
    assert len(config_blocks()) >= 1


@pytest.mark.parametrize("block", config_blocks())
async def test_the_guides_config_block_loads_into_a_real_hub(block, tmp_path, monkeypatch):
    monkeypatch.setenv("NGSCI_BRIDGE_SECRET", "bridge-secret-0123456789abcdef")
    monkeypatch.setenv("NGSCI_SECRET_KEY", "secret-key-0123456789abcdef")
    monkeypatch.setenv("DATABASE_URL", "postgres://ngsci@127.0.0.1:5432/ngsci")
    monkeypatch.delenv("NGSCI_START_TIMEOUT", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(scopes, "scope_definitions", dict(scopes.scope_definitions))
    source = block.replace("/srv/ngsci", str(tmp_path / "srv"))
    c = Config()
    # as JupyterHub runs a config file: `c` in its namespace, nothing else
    exec(compile(source, str(INSTALL), "exec"), {"c": c, "__name__": "__config__"})  # noqa: S102

    c.JupyterHub.db_url = "sqlite://"
    c.JupyterHub.authenticator_class = "dummy"
    c.JupyterHub.cookie_secret_file = str(tmp_path / "cookie_secret")
    app = JupyterHub(config=c)
    app.log.setLevel(logging.WARNING)
    try:
        await app.initialize([])
        assert app.spawner_class is NgsciSpawner
        service = app._service_map["ngsci"]
        assert service.url == "http://127.0.0.1:10101"
        # the secrets went to the 0600 file, not the hub's database
        secrets = tmp_path / "srv" / "service-secrets.json"
        assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
        env = app.services[0]["environment"]
        assert "NGSCI_SECRET_KEY" not in env
        assert env["NGSCI_DATA_DIR"].startswith("/")
        admin = orm.Role.find(app.db, "ngsci-admin")
        assert [u.name for u in admin.users] == ["alice"]
        assert [g.name for g in admin.groups] == ["ngsci-admins"]
        # what a local instance gets as NGSCI_API_URL is a full URL the CLI accepts
        spawner = NgsciSpawner(config=c)
        assert spawner.api_url() == "http://127.0.0.1:10101/services/ngsci/api/v1"
        assert spawner.start_timeout == 900
    finally:
        app.db.close()
        JupyterHub.clear_instance()
