"""`configure_hub`: everything a `jupyterhub_config.py` needs for ngsci, in one call.

It merges into what the config already holds (services, roles, custom scopes) instead of
replacing it, so it can be called before or after the operator's own settings.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from traitlets.config.loader import LazyConfigValue

ADMIN_SCOPE = "custom:ngsci:admin"
ADMIN_ROLE = "ngsci-admin"

# What hub-service does with the hub's API (DESIGN.md, Auth): read users and their activity for
# metering and culling, start and stop servers, keep spawner state. No `access:servers`: the
# service never calls a user's server with its token (kernel states come from the agent).
SERVICE_SCOPES = (
    "list:users",
    "read:users",
    "read:users:activity",
    "read:users:groups",
    "read:groups",
    "read:servers",
    "servers",
    "admin:server_state",
)


# Settings that are secrets. JupyterHub stores a managed service's `environment` in its own
# database (services.environment), so with `secrets_file` these go to a 0600 file instead.
SECRET_SETTING = re.compile(
    r"^(NGSCI_BRIDGE_SECRET|NGSCI_SECRET_KEY|DATABASE_URL|NGSCI_SMTP_URL|NGSCI_TERRAFORM_PG_CONN_STR"
    r"|(AWS|GOOGLE|CLOUDSDK|ARM)_[A-Z0-9_]*)$"
)


def write_secrets_file(path: str | os.PathLike[str], values: Mapping[str, str]) -> None:
    """Write `values` as a JSON object to `path`: 0600 from creation, replaced atomically."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(dict(values), f)
        os.replace(scratch, target)
    except BaseException:
        scratch.unlink(missing_ok=True)
        raise


def configure_hub(
    c: Any,
    *,
    service_command: Sequence[str] = (),
    service_port: int | None = None,
    bridge_secret: str,
    service_environment: Mapping[str, str] | None = None,
    admin_users: Collection[str] = frozenset(),
    admin_groups: Collection[str] = frozenset(),
    service_name: str = "ngsci",
    start_timeout: int | None = None,
    secrets_file: str | os.PathLike[str] | None = None,
    service_url: str | None = None,
    service_api_token: str | None = None,
    service_start_timeout: int = 180,
) -> None:
    """Configure JupyterHub (`c`, the traitlets config of `jupyterhub_config.py`) for ngsci.

    - `NgsciSpawner` as the spawner, named servers on, servers kept running across hub restarts
      (`cleanup_servers = False`: hub-service owns the machines and bills them);
    - hub-service as a managed service listening on `127.0.0.1:<service_port>`, started with
      `service_command` and `service_environment` plus `NGSCI_BRIDGE_SECRET`;
    - the custom scope `custom:ngsci:admin`, held by the role `ngsci-admin`: the users named in
      `admin_users` and every member of the hub groups named in `admin_groups` (so the scope
      follows a group an identity provider fills, with `Authenticator.manage_groups`). JupyterHub's
      own `admin` role does not carry it (that role cannot be edited): a hub admin is an ngsci
      admin only when listed here or in such a group. The scope reaches the service only
      through the service's own hub OAuth login (its OAuth client may carry it) or a token an
      admin creates, never through a server's token;
    - a role for the service with the hub API scopes it needs;
    - `access:services!service=<service_name>` for every user, so their servers' tokens may
      call the service;
    - `NgsciSpawner.service_url` and `.bridge_secret` (and `.start_timeout` when given);
    - how long the hub waits at start-up for the service it starts to answer:
      `service_start_timeout` seconds (it migrates and opens its database first), on JupyterHub 6
      and later; an external service (`service_url`) keeps JupyterHub's default wait, since its
      replicas may start after the hub.

    With `secrets_file`, the bridge secret and every secret setting of `service_environment`
    (SECRET_SETTING) are written to that file (0600) and the service gets only its path
    (`NGSCI_SECRETS_FILE`): JupyterHub keeps a service's environment in its database.

    External service (N replicas behind a load balancer, docs/operations.md): give `service_url`
    (the load balancer, e.g. `http://ngsci-lb:10101`) and `service_api_token` (the token every
    replica uses as `JUPYTERHUB_API_TOKEN`) instead of `service_command`, `service_port` and
    `service_environment`. The hub then starts nothing: it routes `/services/<name>/` to
    `service_url` and keeps the OAuth client `service-<name>`; the operator runs the replicas with
    their settings (the JUPYTERHUB_* variables the hub would have passed included).
    """
    if not bridge_secret:
        raise ValueError("bridge_secret must not be empty")
    if not 1 <= int(service_start_timeout) <= 3600:
        raise ValueError(
            f"service_start_timeout must be 1 to 3600 seconds, not {service_start_timeout!r}"
        )
    if service_url is not None:
        if service_command or service_port is not None or service_environment or secrets_file:
            raise ValueError(
                "service_url (an external service) excludes service_command, service_port,"
                " service_environment and secrets_file: the hub does not start it"
            )
        if not re.match(r"^https?://[^/\s]+/?$", service_url):
            raise ValueError(
                "service_url must be an http(s) origin such as http://10.0.0.5:10101,"
                f" not {service_url!r}"
            )
        if not service_api_token or len(service_api_token) < 16:
            raise ValueError("service_api_token must be at least 16 characters with service_url")
        base_url = service_url.rstrip("/")
    else:
        if not service_command:
            raise ValueError("service_command must name the hub-service program")
        if service_port is None or not 0 < int(service_port) < 65536:
            raise ValueError(f"service_port must be a TCP port, not {service_port!r}")
        base_url = f"http://127.0.0.1:{int(service_port)}"
        _check_data_dir(service_environment or {})

    hub = c.JupyterHub
    hub.spawner_class = "ngsci"
    hub.allow_named_servers = True
    hub.cleanup_servers = False

    hub.custom_scopes.update(
        {
            ADMIN_SCOPE: {
                "description": "Administer ngsci: sizes and prices, plans, quotas and budgets,"
                " every user's instances, usage and audit trail.",
            }
        }
    )

    service_access = f"access:services!service={service_name}"
    started = (
        {"api_token": service_api_token}
        if service_url is not None
        else {
            "command": list(service_command),
            "environment": _service_environment(
                service_environment or {}, bridge_secret, secrets_file
            ),
        }
    )
    hub.services.append(
        {
            "name": service_name,
            "url": base_url,
            **started,
            "display": True,
            # The service's own hub OAuth login (the admin panel's "Sign in as admin") is the one
            # browser path to the admin scope: its tokens may carry it for users who hold it.
            # Single-user servers' tokens never do (NgsciSpawner.admin_scope).
            "oauth_client_allowed_scopes": [service_access, ADMIN_SCOPE],
            # part of the hub, operated by its admins: a consent page adds nothing
            "oauth_no_confirm": True,
            # an external service (replicas) may come up after the hub, which waits for it
            # before it starts: only the service the hub itself starts gets the longer wait
            **(_service_wait(int(service_start_timeout)) if service_url is None else {}),
        }
    )

    _add_role(
        c,
        {
            "name": f"{service_name}-service",
            "description": "What the ngsci hub-service may do with the JupyterHub API",
            "scopes": list(SERVICE_SCOPES),
            "services": [service_name],
        },
    )
    admin_role: dict[str, Any] = {
        "name": ADMIN_ROLE,
        "description": "ngsci administrators",
        "scopes": [ADMIN_SCOPE],
    }
    for key, names in (("users", admin_users), ("groups", admin_groups)):
        if isinstance(names, str):
            raise ValueError(f"admin_{key} must be a collection of names, not the string {names!r}")
        if names:
            admin_role[key] = sorted(names)
    _add_role(c, admin_role)
    _grant_users(c, service_access, use_extra_user_scopes=_hub_has_extra_user_scopes())

    spawner = c.NgsciSpawner
    spawner.service_url = f"{base_url}/services/{service_name}"
    spawner.bridge_secret = bridge_secret
    spawner.service_name = service_name
    if start_timeout is not None:
        spawner.start_timeout = int(start_timeout)


def _check_data_dir(environment: Mapping[str, str]) -> None:
    """Refuse a relative NGSCI_DATA_DIR / NGSCI_LOCAL_HOMES: each instance runs in its own home
    and would resolve it again there (`.ngsci/homes/alice/.ngsci/homes/alice`)."""
    for key in ("NGSCI_DATA_DIR", "NGSCI_LOCAL_HOMES"):
        value = environment.get(key)
        if value is not None and not os.path.isabs(value):
            raise ValueError(
                f"service_environment[{key!r}] must be an absolute path such as /srv/ngsci,"
                f" not {value!r}"
            )


def _hub_has_extra_user_scopes() -> bool:
    from jupyterhub.app import JupyterHub

    return "extra_user_scopes" in JupyterHub.class_traits()


def _grant_users(c: Any, scope: str, *, use_extra_user_scopes: bool) -> None:
    """Give every user `scope` on top of the default `user` role ('self')."""
    if use_extra_user_scopes:
        # JupyterHub >= 6 adds these to the default user role; unlike redefining the role,
        # that composes with whatever else the operator adds.
        hub = c.JupyterHub
        current = hub.extra_user_scopes
        if isinstance(current, LazyConfigValue):
            current.add(scope)
        else:
            hub.extra_user_scopes = {*current, scope}
    else:
        # JupyterHub 5: redefine the user role (the hub merges it with its default, and
        # `self` keeps users' standard permissions).
        _add_role(c, {"name": "user", "scopes": ["self", scope]})


def _add_role(c: Any, role: dict[str, Any]) -> None:
    """Append a role to `load_roles`, or merge it into a role of that name already there.

    A role defined twice makes the hub refuse to start, so merging is not optional.
    """
    roles = c.JupyterHub.load_roles
    if isinstance(roles, LazyConfigValue):
        # Nothing set yet: a lazy append merges with whatever a later line sets.
        roles.append(role)
        return
    for existing in roles:
        if existing.get("name") == role["name"]:
            for key in ("scopes", "users", "services", "groups"):
                if key in role:
                    merged = [*existing.get(key, []), *role[key]]
                    existing[key] = list(dict.fromkeys(merged))
            if "description" in role:
                existing.setdefault("description", role["description"])
            return
    roles.append(role)


def _service_environment(
    environment: Mapping[str, str],
    bridge_secret: str,
    secrets_file: str | os.PathLike[str] | None,
) -> dict[str, str]:
    """The service's environment; its secrets moved to `secrets_file` when one is given."""
    everything = {**environment, "NGSCI_BRIDGE_SECRET": bridge_secret}
    if secrets_file is None:
        return everything
    secrets = {k: v for k, v in everything.items() if SECRET_SETTING.match(k)}
    write_secrets_file(secrets_file, secrets)
    plain = {k: v for k, v in everything.items() if k not in secrets}
    return {**plain, "NGSCI_SECRETS_FILE": str(Path(secrets_file).resolve())}


def _service_wait(seconds: int) -> dict[str, int]:
    """How long the hub waits for the service to answer at start-up (JupyterHub 6's
    ``Service.timeout``, 30 s by default). The service migrates and opens its database first: the
    embedded one on a loaded 2-core machine took more than 30 s, and the hub then exited. Hubs
    before 6.0 have no such field (and refuse unknown ones), so it is set only where it exists."""
    from jupyterhub.services.service import Service

    return {"timeout": seconds} if "timeout" in Service.class_trait_names() else {}
