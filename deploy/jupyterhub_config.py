"""JupyterHub configuration for ngsci on one machine (`npm start`) and for the integration tests.

Every value comes from the environment that scripts/start.mjs sets; see docs/configuration.md.
Operators deploying elsewhere can start from this file: the ngsci parts are the one call to
``configure_hub`` at the bottom.
"""

import hmac
import json
import os
import secrets
import shlex
import sys
from pathlib import Path

from jupyterhub.auth import Authenticator
from ngsci_spawner.hubconfig import configure_hub
from traitlets import Dict, Unicode

c = get_config()  # noqa: F821 (JupyterHub's config loader provides it)

env = os.environ
root = Path(env.get("NGSCI_ROOT", Path(__file__).resolve().parent.parent))
data_dir = Path(env.get("NGSCI_DATA_DIR", root / ".ngsci")).resolve()
hub_dir = data_dir / "hub"
# the hub's database and cookie secret: the service's account only
hub_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
hub_dir.chmod(0o700)


class LocalLoginAuthenticator(Authenticator):
    """Each listed user has their own password: for a single machine, not for production."""

    passwords = Dict(
        key_trait=Unicode(),
        value_trait=Unicode(),
        config=True,
        help="""The users that may log in, each with their own password.

        `npm start` and this file generate them into the login file (NGSCI_LOGIN_FILE, default
        <data dir>/local-login.json, mode 0600), e.g. {"passwords": {"researcher": "...", "admin": "..."}}.
        """,
    )

    async def authenticate(self, handler, data):
        name = (data.get("username") or "").strip()
        given = (data.get("password") or "").encode()
        expected = self.passwords.get(name, "")
        # compare even for an unknown name, so timing tells nothing about which names exist
        ok = hmac.compare_digest(given, (expected or "\0" * 16).encode())
        return name if expected and ok else None


def load_passwords(login_file: Path, users: list[str]) -> dict[str, str]:
    """Each user's password from the login file; a user without one gets a new one, saved 0600."""
    stored = json.loads(login_file.read_text()) if login_file.exists() else {}
    passwords = dict(stored.get("passwords") or {})
    missing = [u for u in users if not passwords.get(u)]
    if missing:
        for user in missing:
            passwords[user] = secrets.token_urlsafe(12)
        stored.pop("password", None)  # one password for everyone, from before
        stored["passwords"] = passwords
        tmp = login_file.with_name(f"{login_file.name}.{os.getpid()}.tmp")
        # created 0600: the passwords never exist in a file others may read
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(stored, f, indent=2)
        os.replace(tmp, login_file)
        print(
            f"ngsci: new passwords for {', '.join(missing)} are in {login_file}",
            file=sys.stderr,
        )
    return {u: passwords[u] for u in users}


researchers = [u for u in env.get("NGSCI_USERS", "researcher").split(",") if u]
admins = [u for u in env.get("NGSCI_ADMINS", "admin").split(",") if u]
if env.get("NGSCI_PASSWORD"):
    print(
        "ngsci: NGSCI_PASSWORD is no longer used: each user has their own password in the login file",
        file=sys.stderr,
    )

c.JupyterHub.authenticator_class = LocalLoginAuthenticator
c.LocalLoginAuthenticator.passwords = load_passwords(
    Path(env.get("NGSCI_LOGIN_FILE", data_dir / "local-login.json")),
    researchers + admins,
)
c.Authenticator.allowed_users = set(researchers + admins)
c.Authenticator.admin_users = set(admins)

c.JupyterHub.ip = env.get("NGSCI_HUB_IP", "127.0.0.1")
c.JupyterHub.port = int(env.get("NGSCI_HUB_PORT", "8000"))
# The hub's own API stays on loopback, also with cloud machines: they reach it through the public
# proxy (/hub/api) at NGSCI_VM_HUB_URL, and hub-service rewrites each machine's JUPYTERHUB_API_URL,
# JUPYTERHUB_ACTIVITY_URL and NGSCI_API_URL from that one setting (docs/clouds.md). Binding the hub
# API to a routable address (JupyterHub.hub_bind_url) is not needed and not advised.
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = int(env.get("NGSCI_HUB_API_PORT", "8081"))
c.ConfigurableHTTPProxy.api_url = (
    f"http://127.0.0.1:{env.get('NGSCI_PROXY_API_PORT', '8001')}"
)
c.ConfigurableHTTPProxy.command = [
    str(root / "node_modules" / ".bin" / "configurable-http-proxy")
]
c.ConfigurableHTTPProxy.should_start = True
c.JupyterHub.db_url = f"sqlite:///{hub_dir / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(hub_dir / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(hub_dir / "jupyterhub.pid")
c.JupyterHub.last_activity_interval = int(env.get("NGSCI_HUB_ACTIVITY_INTERVAL", "300"))
c.JupyterHub.redirect_to_server = False

venv_bin = Path(env.get("NGSCI_VENV", root / ".venv")) / "bin"
service_environment = {
    "NGSCI_DATA_DIR": str(data_dir),
    "NGSCI_LOCAL_COMMAND": str(venv_bin / "jupyterhub-singleuser"),
    "NGSCI_LOCAL_STOP_ON_SHUTDOWN": env.get("NGSCI_LOCAL_STOP_ON_SHUTDOWN", "true"),
    # `ngsci agent` beside each local instance (the launcher scripts/setup.mjs writes)
    "NGSCI_AGENT_COMMAND": env.get(
        "NGSCI_AGENT_COMMAND",
        str(venv_bin / "ngsci") if (venv_bin / "ngsci").exists() else "",
    ),
    "NGSCI_LOG_LEVEL": env.get("NGSCI_LOG_LEVEL", "info"),
    "PATH": f"{venv_bin}{os.pathsep}{env.get('PATH', '')}",
}
# settings passed through to the service as they are (documented in docs/configuration.md)
for key, value in env.items():
    cloud_credentials = key.startswith(("AWS_", "GOOGLE_", "CLOUDSDK_", "ARM_"))
    if (
        key == "DATABASE_URL"
        or cloud_credentials
        or (
            key.startswith("NGSCI_")
            and key
            not in (
                "NGSCI_PASSWORD",
                "NGSCI_BRIDGE_SECRET",
                "NGSCI_TEST_ADMIN_TOKEN",
                "NGSCI_SERVICE_COMMAND",
                "NGSCI_SERVICE_API_TOKEN",
                "NGSCI_LOGIN_FILE",
            )
        )
    ):
        service_environment.setdefault(key, value)

service_command = shlex.split(
    env.get(
        "NGSCI_SERVICE_COMMAND", f"node {root / 'hub-service' / 'dist' / 'index.js'}"
    )
)

# NGSCI_SERVICE_EXTERNAL_URL: the service runs outside the hub (N replicas behind a load balancer
# at that URL, each with JUPYTERHUB_API_TOKEN = NGSCI_SERVICE_API_TOKEN); the hub starts nothing
# (docs/operations.md, "Running N service replicas")
external_url = env.get("NGSCI_SERVICE_EXTERNAL_URL")
service_args = (
    {
        "service_url": external_url,
        "service_api_token": env.get("NGSCI_SERVICE_API_TOKEN", ""),
    }
    if external_url
    else {
        "service_command": service_command,
        "service_port": int(env.get("NGSCI_SERVICE_PORT", "10101")),
        "service_environment": service_environment,
        # the hub keeps a service's environment in its database: secrets go to a 0600 file instead
        "secrets_file": data_dir / "service-secrets.json",
    }
)
configure_hub(
    c,
    **service_args,
    bridge_secret=env["NGSCI_BRIDGE_SECRET"],
    admin_users=set(admins),
    # a local process is up in seconds; a cloud VM with a GPU driver takes minutes
    start_timeout=int(
        env.get(
            "NGSCI_START_TIMEOUT",
            "900" if env.get("NGSCI_PROVISIONER") == "terraform" else "120",
        )
    ),
)
c.NgsciSpawner.cmd = [str(venv_bin / "jupyterhub-singleuser")]
# Local instances reach the service directly; cloud machines get theirs from hub-service, made
# from NGSCI_VM_HUB_URL, whatever this says.
service_origin = (
    external_url or f"http://127.0.0.1:{env.get('NGSCI_SERVICE_PORT', '10101')}"
)
c.NgsciSpawner.public_api_url = env.get(
    "NGSCI_PUBLIC_API_URL", f"{service_origin.rstrip('/')}/services/ngsci/api/v1"
)

# The integration tests drive the hub through a service token of their own.
test_token = env.get("NGSCI_TEST_ADMIN_TOKEN")
if test_token:
    c.JupyterHub.services.append({"name": "ngsci-test", "api_token": test_token})
    c.JupyterHub.load_roles.append(
        {
            "name": "ngsci-test",
            "services": ["ngsci-test"],
            "scopes": [
                "admin:users",
                "admin:servers",
                "tokens",
                "admin:groups",
                "read:hub",
            ],
        }
    )

if env.get("NGSCI_HUB_EXTRA_CONFIG"):
    for key, value in json.loads(env["NGSCI_HUB_EXTRA_CONFIG"]).items():
        section, _, trait = key.partition(".")
        setattr(getattr(c, section), trait, value)
