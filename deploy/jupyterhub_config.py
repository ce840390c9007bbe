"""JupyterHub configuration for ngsci on one machine (`npm start`) and for the integration tests.

Every value comes from the environment that scripts/start.mjs (or docker/compose.yaml) sets; see
docs/configuration.md. The login is a real identity provider's (NGSCI_AUTHENTICATOR=generic-oauth,
github, google, azuread...: docs/install.md, "Logging in"), or, for the one-machine demo only
(NGSCI_DEMO=1, which `npm start` sets), each listed user's own generated password. Operators
deploying elsewhere can start from this file: the ngsci parts are the one call to ``configure_hub``
at the bottom.
"""

import hmac
import json
import os
import re
import secrets
import shlex
import sys
from importlib.metadata import entry_points
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


def github_team_groups(auth_state: dict) -> list[str]:
    """The GitHub teams of a login (`populate_teams_in_auth_state`) as `<org>:<team>` names."""
    return [
        f"{team['organization']['login']}:{team['slug']}"
        for team in auth_state.get("teams") or []
    ]


def configure_oauth(
    c, name: str, *, admins: list[str], admin_groups: list[str]
) -> None:
    """A real login through an OAuth 2 / OpenID Connect identity provider (oauthenticator).

    `name` is the authenticator's entry point: generic-oauth (any OIDC provider: Keycloak,
    Azure AD, Okta, Authentik...), github, google, azuread, gitlab... The client's id, secret and
    callback come from oauthenticator's own settings (OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET,
    OAUTH_CALLBACK_URL; generic-oauth also OAUTH2_AUTHORIZE_URL, OAUTH2_TOKEN_URL,
    OAUTH2_USERDATA_URL), which never reach the service's environment. docs/install.md,
    "Logging in", has one example per provider.
    """
    try:
        from oauthenticator.oauth2 import OAuthenticator  # noqa: F401
    except ImportError:
        config_error(
            f"NGSCI_AUTHENTICATOR={name} needs oauthenticator: pip install 'oauthenticator>=17'"
            " (deploy/requirements.txt has it)"
        )
    known = sorted(
        e.name
        for e in entry_points(group="jupyterhub.authenticators")
        if e.value.startswith("oauthenticator.")
    )
    if name not in known:
        config_error(
            f"NGSCI_AUTHENTICATOR must be local or one of oauthenticator's ({', '.join(known)}),"
            f" not {name!r}; another authenticator goes in a config file of your own"
            " (docs/install.md, 'Logging in')"
        )
    for setting in ("OAUTH_CLIENT_ID", "OAUTH_CLIENT_SECRET"):
        if not env.get(setting):
            config_error(f"NGSCI_AUTHENTICATOR={name} needs {setting}")
    if not env.get("OAUTH_CALLBACK_URL") and env.get("NGSCI_HUB_PUBLIC_URL"):
        # the address registered with the provider; without either, oauthenticator takes it
        # from each login request (scheme and Host as the hub sees them)
        c.OAuthenticator.oauth_callback_url = (
            f"{env['NGSCI_HUB_PUBLIC_URL'].rstrip('/')}/hub/oauth_callback"
        )
    if name in ("generic-oauth", "local-generic-oauth"):
        for setting in (
            "OAUTH2_AUTHORIZE_URL",
            "OAUTH2_TOKEN_URL",
            "OAUTH2_USERDATA_URL",
        ):
            if not env.get(setting):
                config_error(
                    f"NGSCI_AUTHENTICATOR={name} needs {setting} (the provider's endpoint)"
                )
    c.JupyterHub.authenticator_class = name
    auth = c.OAuthenticator
    if env.get("NGSCI_OAUTH_LOGIN_SERVICE"):
        auth.login_service = env["NGSCI_OAUTH_LOGIN_SERVICE"]
    if name in ("generic-oauth", "local-generic-oauth"):
        # OpenID Connect's standard claims; a provider may name the groups' scope otherwise
        # (an empty setting, as compose passes an unset one, means the default)
        scope = env.get("NGSCI_OAUTH_SCOPE") or "openid profile email"
        c.GenericOAuthenticator.scope = scope.split()
        c.GenericOAuthenticator.username_claim = (
            env.get("NGSCI_OAUTH_USERNAME_CLAIM") or "preferred_username"
        )
    elif env.get("NGSCI_OAUTH_SCOPE"):
        auth.scope = env["NGSCI_OAUTH_SCOPE"].split()
    # the provider's groups become hub groups at every login (and so ngsci group budgets and
    # plans); NGSCI_ADMIN_GROUPS then makes a group's members hub and ngsci admins
    groups_key = env.get("NGSCI_OAUTH_GROUPS_KEY", "")
    if name in ("github", "local-github") and groups_key == "teams":
        # GitHub's teams (read:org) as hub groups named "<organization>:<team slug>"
        c.GitHubOAuthenticator.populate_teams_in_auth_state = True
        if "read:org" not in auth.get("scope", []):
            auth.scope = [*auth.get("scope", []), "read:org"]
        groups_key = github_team_groups
    allowed_groups = set(env_list("NGSCI_OAUTH_ALLOWED_GROUPS"))
    if (allowed_groups or admin_groups) and not groups_key:
        config_error(
            "NGSCI_OAUTH_ALLOWED_GROUPS and NGSCI_ADMIN_GROUPS need NGSCI_OAUTH_GROUPS_KEY: where"
            " the provider's groups are in the login, e.g. oauth_user.groups"
        )
    if groups_key:
        auth.manage_groups = True
        auth.auth_state_groups_key = groups_key
        if allowed_groups:
            auth.allowed_groups = allowed_groups
        if admin_groups:
            auth.admin_groups = set(admin_groups)
    allowed_users = set(env_list("NGSCI_OAUTH_ALLOWED_USERS"))
    if allowed_users:
        auth.allowed_users = allowed_users
    auth.admin_users = set(admins)
    if env.get("NGSCI_OAUTH_ALLOW_ALL") == "1":
        auth.allow_all = True
    elif not (allowed_groups or allowed_users or admins or admin_groups):
        print(
            "ngsci: nobody may log in yet: set NGSCI_OAUTH_ALLOWED_GROUPS,"
            " NGSCI_OAUTH_ALLOWED_USERS or NGSCI_OAUTH_ALLOW_ALL=1 (or the provider's own"
            " allow-list, e.g. GitHubOAuthenticator.allowed_organizations)",
            file=sys.stderr,
        )


def env_list(name: str) -> list[str]:
    """A comma-separated setting as a list of names (blanks dropped)."""
    return [x.strip() for x in env.get(name, "").split(",") if x.strip()]


def config_error(message: str) -> None:
    """Stop the hub at start-up with a message naming the setting to fix."""
    print(f"ngsci: {message}", file=sys.stderr)
    raise SystemExit(2)


authenticator = env.get("NGSCI_AUTHENTICATOR", "local").strip() or "local"
demo_login = authenticator == "local"
researchers = env_list("NGSCI_USERS") or ["researcher"]
# the demo's admin is `admin`; with a real login, nobody is an admin unless named or in a group
admins = env_list("NGSCI_ADMINS") or (["admin"] if demo_login else [])
# hub groups whose members are ngsci admins (and hub admins): with an identity provider's groups
admin_groups = env_list("NGSCI_ADMIN_GROUPS")
if env.get("NGSCI_PASSWORD"):
    print(
        "ngsci: NGSCI_PASSWORD is no longer used: each user has their own password in the login file",
        file=sys.stderr,
    )

if demo_login:
    # the one-machine demo's login: `npm start` (scripts/start.mjs) sets NGSCI_DEMO=1
    if env.get("NGSCI_DEMO") != "1":
        config_error(
            "the local password login (NGSCI_AUTHENTICATOR=local) is for the one-machine demo"
            " only: set NGSCI_DEMO=1 to use it anyway, or configure a real login with"
            " NGSCI_AUTHENTICATOR=generic-oauth (or github, google, azuread) as"
            " docs/install.md, 'Logging in', shows"
        )
    c.JupyterHub.authenticator_class = LocalLoginAuthenticator
    c.LocalLoginAuthenticator.passwords = load_passwords(
        Path(env.get("NGSCI_LOGIN_FILE", data_dir / "local-login.json")),
        researchers + admins,
    )
    c.Authenticator.allowed_users = set(researchers + admins)
    c.Authenticator.admin_users = set(admins)
else:
    configure_oauth(c, authenticator, admins=admins, admin_groups=admin_groups)

c.JupyterHub.ip = env.get("NGSCI_HUB_IP", "127.0.0.1")
c.JupyterHub.port = int(env.get("NGSCI_HUB_PORT", "8000"))
# TLS, either way (docs/install.md, "TLS"): the hub's own certificate (NGSCI_HUB_SSL_CERT and
# NGSCI_HUB_SSL_KEY: the proxy serves https on the hub's port), or a TLS terminator in front (Caddy
# with automatic certificates) and NGSCI_HUB_PUBLIC_URL=https://<name>/. Served over https, every
# hub cookie is Secure and every hub page says Strict-Transport-Security.
ssl_cert = env.get("NGSCI_HUB_SSL_CERT", "")
ssl_key = env.get("NGSCI_HUB_SSL_KEY", "")
if bool(ssl_cert) != bool(ssl_key):
    config_error(
        "NGSCI_HUB_SSL_CERT and NGSCI_HUB_SSL_KEY go together: set both or neither"
    )
for setting, value in (
    ("NGSCI_HUB_SSL_CERT", ssl_cert),
    ("NGSCI_HUB_SSL_KEY", ssl_key),
):
    if value and not Path(value).is_file():
        config_error(f"{setting}={value!r} is not a readable file")
if ssl_cert:
    c.JupyterHub.ssl_cert = ssl_cert
    c.JupyterHub.ssl_key = ssl_key
public_url = env.get("NGSCI_HUB_PUBLIC_URL", "")
if public_url:
    if not re.match(r"^https?://[^/\s]+(/\S*)?$", public_url):
        config_error(
            f"NGSCI_HUB_PUBLIC_URL must be the hub's address such as https://hub.example.org/,"
            f" not {public_url!r}"
        )
    c.JupyterHub.public_url = public_url
if ssl_cert or public_url.startswith("https://"):
    hsts = env.get("NGSCI_HSTS_MAX_AGE", "31536000")
    if not hsts.isdigit():
        config_error(f"NGSCI_HSTS_MAX_AGE must be a number of seconds, not {hsts!r}")
    c.JupyterHub.tornado_settings = {
        # the hub's cookies (login, session, _xsrf) are never sent over plain http
        "cookie_options": {"secure": True},
        **(
            {"headers": {"Strict-Transport-Security": f"max-age={int(hsts)}"}}
            if int(hsts) > 0
            else {}
        ),
    }

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
            and not key.startswith(("NGSCI_OAUTH_", "NGSCI_HUB_SSL_"))
            and key
            not in (
                "NGSCI_PASSWORD",
                "NGSCI_BRIDGE_SECRET",
                "NGSCI_TEST_ADMIN_TOKEN",
                "NGSCI_SERVICE_COMMAND",
                "NGSCI_SERVICE_API_TOKEN",
                "NGSCI_LOGIN_FILE",
                "NGSCI_DEMO",
                "NGSCI_AUTHENTICATOR",
                "NGSCI_ADMIN_GROUPS",
                # hub settings, which may hold an authenticator's
                "NGSCI_HUB_EXTRA_CONFIG",
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
    admin_groups=set(admin_groups),
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
