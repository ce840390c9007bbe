"""The peer for bench/spawn: a plain JupyterHub with its own SimpleLocalProcessSpawner running
the same single-user command as ngsci's local provisioner, driven through the REST API."""

import os
from pathlib import Path

c = get_config()  # noqa: F821

env = os.environ
data = Path(env["BENCH_DATA_DIR"])
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = int(env["BENCH_HUB_PORT"])
c.JupyterHub.hub_port = int(env["BENCH_HUB_API_PORT"])
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{env['BENCH_PROXY_API_PORT']}"
c.ConfigurableHTTPProxy.command = [env["BENCH_CHP"]]
c.JupyterHub.db_url = f"sqlite:///{data / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(data / "cookie_secret")
c.JupyterHub.authenticator_class = "null"
c.Authenticator.allowed_users = {"bench"}
c.JupyterHub.spawner_class = "jupyterhub.spawner.SimpleLocalProcessSpawner"
c.Spawner.cmd = [env["BENCH_SINGLEUSER"]]
c.Spawner.args = ["--allow-root"] if os.getuid() == 0 else []
c.SimpleLocalProcessSpawner.home_dir_template = str(data / "home-{username}")
c.JupyterHub.services = [{"name": "bench", "api_token": env["BENCH_TOKEN"]}]
c.JupyterHub.load_roles = [{"name": "bench", "services": ["bench"], "scopes": ["admin:users", "admin:servers"]}]
