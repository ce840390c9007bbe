"""configure_hub: the config it writes, and a real JupyterHub that loads it."""

from __future__ import annotations

import json
import logging
import stat

import pytest
from jupyterhub import orm, roles, scopes
from jupyterhub.app import JupyterHub
from traitlets.config import Config

from ngsci_spawner import NgsciSpawner, configure_hub
from ngsci_spawner.hubconfig import SERVICE_SCOPES, _grant_users

ARGS = {
    "service_command": ["node", "hub-service/dist/index.js"],
    "service_port": 10101,
    "bridge_secret": "s3cret-bridge",
    "service_environment": {"DATABASE_URL": "postgres://db/ngsci"},
}


def configured(**overrides) -> Config:
    c = Config()
    configure_hub(c, **{**ARGS, **overrides})
    return c


def loaded(c: Config) -> JupyterHub:
    """The hub's view of `c`: lazy appends and updates resolved against its defaults."""
    return JupyterHub(config=c)


def test_structure():
    hub = loaded(configured(admin_users={"alice"}, start_timeout=1200))

    assert hub.spawner_class is NgsciSpawner
    assert hub.allow_named_servers is True
    assert hub.cleanup_servers is False
    assert "description" in hub.custom_scopes["custom:ngsci:admin"]
    assert hub.services == [
        {
            "name": "ngsci",
            "url": "http://127.0.0.1:10101",
            "command": ["node", "hub-service/dist/index.js"],
            "environment": {
                "DATABASE_URL": "postgres://db/ngsci",
                "NGSCI_BRIDGE_SECRET": "s3cret-bridge",
            },
            "display": True,
            "oauth_client_allowed_scopes": [
                "access:services!service=ngsci",
                "custom:ngsci:admin",
            ],
            "oauth_no_confirm": True,
            # the hub waits for the service's database to open (30 s was too short under load)
            "timeout": 180,
        }
    ]
    by_name = {role["name"]: role for role in hub.load_roles}
    assert by_name["ngsci-service"]["services"] == ["ngsci"]
    assert set(by_name["ngsci-service"]["scopes"]) == set(SERVICE_SCOPES)
    assert by_name["ngsci-admin"] == {
        "name": "ngsci-admin",
        "description": "ngsci administrators",
        "scopes": ["custom:ngsci:admin"],
        "users": ["alice"],
    }
    assert "access:services!service=ngsci" in hub.extra_user_scopes

    spawner = NgsciSpawner(config=hub.config)
    assert spawner.service_url == "http://127.0.0.1:10101/services/ngsci"
    assert spawner.bridge_secret == "s3cret-bridge"
    assert spawner.start_timeout == 1200


def test_secrets_go_to_a_private_file_not_the_hub_database(tmp_path):
    # JupyterHub stores a managed service's environment in its database: secrets must not be in it
    secrets = tmp_path / "service-secrets.json"
    env = {
        "DATABASE_URL": "postgres://u:pw@db/ngsci",
        "NGSCI_SECRET_KEY": "k" * 32,
        "AWS_SECRET_ACCESS_KEY": "aws-secret",
        "NGSCI_LOG_LEVEL": "info",
    }
    service = loaded(configured(service_environment=env, secrets_file=secrets)).services[0]
    assert service["environment"] == {
        "NGSCI_LOG_LEVEL": "info",
        "NGSCI_SECRETS_FILE": str(secrets.resolve()),
    }
    assert json.loads(secrets.read_text()) == {
        "DATABASE_URL": "postgres://u:pw@db/ngsci",
        "NGSCI_SECRET_KEY": "k" * 32,
        "AWS_SECRET_ACCESS_KEY": "aws-secret",
        "NGSCI_BRIDGE_SECRET": "s3cret-bridge",
    }
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    # written again (replaced) at the next start, still private
    configured(service_environment={"NGSCI_SECRET_KEY": "n" * 32}, secrets_file=secrets)
    assert json.loads(secrets.read_text())["NGSCI_SECRET_KEY"] == "n" * 32
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600


def test_merges_with_existing_config():
    c = Config()
    c.JupyterHub.services = [{"name": "idle-culler", "command": ["cull"]}]
    c.JupyterHub.load_roles = [
        {"name": "ngsci-admin", "scopes": ["read:users"], "users": ["bob"]},
        {"name": "culler", "scopes": ["servers"], "services": ["idle-culler"]},
    ]
    c.JupyterHub.custom_scopes = {"custom:other:thing": {"description": "other"}}
    c.JupyterHub.extra_user_scopes = {"read:groups"}
    configure_hub(c, **ARGS, admin_users={"alice"})

    hub = loaded(c)
    assert [s["name"] for s in hub.services] == ["idle-culler", "ngsci"]
    by_name = {role["name"]: role for role in hub.load_roles}
    assert set(by_name) == {"ngsci-admin", "culler", "ngsci-service"}
    assert by_name["ngsci-admin"]["users"] == ["bob", "alice"]
    assert by_name["ngsci-admin"]["scopes"] == ["read:users", "custom:ngsci:admin"]
    assert set(hub.custom_scopes) == {"custom:other:thing", "custom:ngsci:admin"}
    assert hub.extra_user_scopes == {"read:groups", "access:services!service=ngsci"}


def test_settings_written_after_configure_hub_still_merge():
    c = configured()
    c.JupyterHub.services.append({"name": "later", "command": ["x"]})
    assert [s["name"] for s in loaded(c).services] == ["ngsci", "later"]


@pytest.mark.parametrize(
    ("override", "complaint"),
    [
        ({"bridge_secret": ""}, "bridge_secret"),
        ({"service_command": []}, "service_command"),
        ({"service_port": 70000}, "service_port"),
        ({"admin_groups": "lab-admins"}, "admin_groups"),
        ({"service_start_timeout": 0}, "service_start_timeout"),
        (
            {"service_environment": {"NGSCI_DATA_DIR": ".ngsci"}},
            "NGSCI_DATA_DIR.*absolute path",
        ),
        (
            {"service_environment": {"NGSCI_DATA_DIR": "/srv/ngsci", "NGSCI_LOCAL_HOMES": "homes"}},
            "NGSCI_LOCAL_HOMES.*absolute path",
        ),
    ],
)
def test_refuses_bad_arguments(override, complaint):
    with pytest.raises(ValueError, match=complaint):
        configured(**override)


def test_jupyterhub_5_redefines_the_user_role():
    c = Config()
    c.JupyterHub.load_roles = [{"name": "user", "scopes": ["self", "read:groups"]}]
    _grant_users(c, "access:services!service=ngsci", use_extra_user_scopes=False)
    assert c.JupyterHub.load_roles == [
        {"name": "user", "scopes": ["self", "read:groups", "access:services!service=ngsci"]}
    ]


@pytest.fixture
async def hub(tmp_path, monkeypatch):
    """A real JupyterHub, initialized (database, roles, services, users) but not started."""

    async def make(c: Config) -> JupyterHub:
        monkeypatch.chdir(tmp_path)
        # define_custom_scopes() changes a module-level dict: restore it afterwards
        monkeypatch.setattr(scopes, "scope_definitions", dict(scopes.scope_definitions))
        c.JupyterHub.db_url = "sqlite://"
        c.JupyterHub.authenticator_class = "dummy"
        c.JupyterHub.cookie_secret_file = str(tmp_path / "cookie_secret")
        app = JupyterHub(config=c)
        app.log.setLevel(logging.WARNING)
        await app.initialize([])
        made.append(app)
        return app

    made: list[JupyterHub] = []
    yield make
    for app in made:
        app.db.close()
    JupyterHub.clear_instance()


@pytest.mark.parametrize("use_extra_user_scopes", [True, False])
async def test_a_real_hub_accepts_it(hub, use_extra_user_scopes, monkeypatch):
    monkeypatch.setattr(
        "ngsci_spawner.hubconfig._hub_has_extra_user_scopes", lambda: use_extra_user_scopes
    )
    app = await hub(configured(admin_users={"alice"}))

    role = orm.Role.find(app.db, "ngsci-service")
    assert [s.name for s in role.services] == ["ngsci"]
    assert [u.name for u in orm.Role.find(app.db, "ngsci-admin").users] == ["alice"]
    assert "ngsci" in app._service_map

    bob = orm.User(name="bob")
    app.db.add(bob)
    app.db.commit()
    roles.assign_default_roles(app.db, bob)

    for name, gets_admin in (("alice", True), ("bob", False)):
        user = app.users[orm.User.find(app.db, name)]
        spawner = user.spawner
        assert isinstance(spawner, NgsciSpawner)
        # what User.spawn does with server_token_scopes: keep those the user holds
        have = roles.roles_to_scopes(roles.get_roles_for(user.orm_user)) | {"inherit"}
        client = app.db.query(orm.OAuthClient).filter_by(identifier="jupyterhub").one()
        requested = {
            f"{scope}={name}/" if scope.endswith("!server") else scope
            for scope in spawner.server_token_scopes
        }
        granted, _ = scopes._resolve_requested_scopes(
            requested, have, user.orm_user, client, app.db
        )
        assert "access:services!service=ngsci" in granted
        assert "users:activity!user" in granted
        # a server runs its user's code: not even an admin's server gets the admin scope
        assert "custom:ngsci:admin" not in granted

        # the service's own OAuth login (the admin panel's sign-in) may carry it, for holders
        service_client = app.db.query(orm.OAuthClient).filter_by(identifier="service-ngsci").one()
        assert {"access:services!service=ngsci", "custom:ngsci:admin"} <= set(
            service_client.allowed_scopes
        )
        via_service, _ = scopes._resolve_requested_scopes(
            set(service_client.allowed_scopes), have, user.orm_user, service_client, app.db
        )
        assert ("custom:ngsci:admin" in via_service) is gets_admin


def test_the_service_role_cannot_reach_user_servers():
    # the service never calls a user's server with its token: no scope would let it
    assert not any(s == "access:servers" or s.startswith("access:servers!") for s in SERVICE_SCOPES)


def test_external_service_replicas():
    c = Config()
    configure_hub(
        c,
        bridge_secret="s3cret-bridge",
        service_url="http://10.0.0.5:10101/",
        service_api_token="t" * 32,
    )
    hub = loaded(c)
    (service,) = hub.services
    # the hub starts nothing: no command, no environment; the replicas present this token
    assert service["url"] == "http://10.0.0.5:10101"
    assert service["api_token"] == "t" * 32
    assert "command" not in service
    assert "environment" not in service
    # replicas may start after the hub, which must not hold its own start for them
    assert "timeout" not in service
    assert c.NgsciSpawner.service_url == "http://10.0.0.5:10101/services/ngsci"


@pytest.mark.parametrize(
    ("override", "complaint"),
    [
        ({"service_command": ["node", "x.js"]}, "excludes"),
        ({"service_api_token": "short"}, "service_api_token"),
        ({"service_url": "10.0.0.5:10101"}, "origin"),
    ],
)
def test_external_service_refuses_bad_arguments(override, complaint):
    args = {
        "bridge_secret": "s3cret-bridge",
        "service_url": "http://10.0.0.5:10101",
        "service_api_token": "t" * 32,
        **override,
    }
    with pytest.raises(ValueError, match=complaint):
        configure_hub(Config(), **args)


async def test_the_admin_scope_follows_a_hub_group(hub):
    """Admins from an identity provider's group: members of an `admin_groups` group hold the
    admin scope, joining the group later grants it, and a hub admin outside it does not."""
    c = configured(admin_users={"alice"}, admin_groups={"lab-admins"})
    c.JupyterHub.load_groups = {"lab-admins": {"users": ["carol"]}}
    c.Authenticator.admin_users = {"root"}
    app = await hub(c)

    role = orm.Role.find(app.db, "ngsci-admin")
    assert [g.name for g in role.groups] == ["lab-admins"]

    def holds_admin_scope(name: str) -> bool:
        user = orm.User.find(app.db, name) or orm.User(name=name)
        if user.id is None:
            app.db.add(user)
            app.db.commit()
            roles.assign_default_roles(app.db, user)
        return "custom:ngsci:admin" in scopes.get_scopes_for(user)

    assert holds_admin_scope("alice")
    assert holds_admin_scope("carol")
    assert not holds_admin_scope("dave")
    # JupyterHub's own admin role does not carry the custom scope
    assert not holds_admin_scope("root")
    # joining the group (what Authenticator.manage_groups does at login) grants it
    dave = orm.User.find(app.db, "dave")
    dave.groups.append(orm.Group.find(app.db, "lab-admins"))
    app.db.commit()
    assert holds_admin_scope("dave")
