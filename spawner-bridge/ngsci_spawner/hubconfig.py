"""`configure_hub`: everything a `jupyterhub_config.py` needs for ngsci, in one call.

It merges into what the config already holds (services, roles, custom scopes) instead of
replacing it, so it can be called before or after the operator's own settings.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
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


def configure_hub(
    c: Any,
    *,
    service_command: Sequence[str],
    service_port: int,
    bridge_secret: str,
    service_environment: Mapping[str, str],
    admin_users: Collection[str] = frozenset(),
    service_name: str = "ngsci",
    start_timeout: int | None = None,
) -> None:
    """Configure JupyterHub (`c`, the traitlets config of `jupyterhub_config.py`) for ngsci.

    - `NgsciSpawner` as the spawner, named servers on, servers kept running across hub restarts
      (`cleanup_servers = False`: hub-service owns the machines and bills them);
    - hub-service as a managed service listening on `127.0.0.1:<service_port>`, started with
      `service_command` and `service_environment` plus `NGSCI_BRIDGE_SECRET`;
    - the custom scope `custom:ngsci:admin`, held by the role `ngsci-admin` (`admin_users`),
      which reaches the service only through the service's own hub OAuth login (its OAuth
      client may carry it) or a token an admin creates, never through a server's token;
    - a role for the service with the hub API scopes it needs;
    - `access:services!service=<service_name>` for every user, so their servers' tokens may
      call the service;
    - `NgsciSpawner.service_url` and `.bridge_secret` (and `.start_timeout` when given).
    """
    if not bridge_secret:
        raise ValueError("bridge_secret must not be empty")
    if not service_command:
        raise ValueError("service_command must name the hub-service program")
    if not 0 < int(service_port) < 65536:
        raise ValueError(f"service_port must be a TCP port, not {service_port!r}")

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
    hub.services.append(
        {
            "name": service_name,
            "url": f"http://127.0.0.1:{int(service_port)}",
            "command": list(service_command),
            "environment": {**service_environment, "NGSCI_BRIDGE_SECRET": bridge_secret},
            "display": True,
            # The service's own hub OAuth login (the admin panel's "Sign in as admin") is the one
            # browser path to the admin scope: its tokens may carry it for users who hold it.
            # Single-user servers' tokens never do (NgsciSpawner.admin_scope).
            "oauth_client_allowed_scopes": [service_access, ADMIN_SCOPE],
            # part of the hub, operated by its admins: a consent page adds nothing
            "oauth_no_confirm": True,
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
    if admin_users:
        admin_role["users"] = sorted(admin_users)
    _add_role(c, admin_role)
    _grant_users(c, service_access, use_extra_user_scopes=_hub_has_extra_user_scopes())

    spawner = c.NgsciSpawner
    spawner.service_url = f"http://127.0.0.1:{int(service_port)}/services/{service_name}"
    spawner.bridge_secret = bridge_secret
    spawner.service_name = service_name
    if start_timeout is not None:
        spawner.start_timeout = int(start_timeout)


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
