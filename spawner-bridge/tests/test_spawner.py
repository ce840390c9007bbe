"""NgsciSpawner driven directly against the fake hub-service."""

from __future__ import annotations

import asyncio
import logging
import socket
import time

import pytest
from jupyterhub.scopes import scope_definitions
from tornado import web
from traitlets import TraitError

from ngsci_spawner import NgsciSpawner, SpawnError

from .conftest import HUB_TOKEN, PREFIX, SECRET


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{PREFIX}"


def ours(caplog, level: int) -> list[logging.LogRecord]:
    """Records the spawner logged at `level` (not the base class's, nor the fake's access log)."""
    return [r for r in caplog.records if "ngsci_spawner" in r.pathname and r.levelno == level]


# ---- start


async def test_start_returns_target_url_and_records_instance(service, make_spawner):
    spawner = make_spawner()

    url = await spawner.start()

    assert url == "http://127.0.0.1:40123/user/alice/"
    assert spawner.get_state() == {"instance_id": "inst-1"}
    start = service.requests[0]
    assert f"{start.method} {start.path}" == f"POST {PREFIX}/api/v1/bridge/start"
    assert start.body["user"] == "alice"
    assert start.body["server"] == ""
    assert start.body["options"] == {"size": "gpu-t4", "cloud": "aws"}
    assert start.body["baseUrl"] == "/user/alice/"
    assert start.body["env"]["JUPYTERHUB_API_TOKEN"] == HUB_TOKEN
    assert start.body["env"]["NGSCI_API_URL"] == f"{service.url}/api/v1"
    assert SECRET not in str(start.body)
    # then it polled the instance until running
    assert service.paths()[1:] == [f"GET {PREFIX}/api/v1/bridge/instances/inst-1"] * 3


async def test_every_request_carries_the_bridge_secret(service, make_spawner):
    spawner = make_spawner()
    await spawner.start()
    await spawner.poll()
    await spawner.stop()
    await spawner.render_options_form()

    assert len(service.requests) > 5
    assert {r.headers.get("Authorization") for r in service.requests} == {f"Bearer {SECRET}"}


async def test_start_of_a_named_server(service, make_spawner):
    spawner = make_spawner("train")
    assert await spawner.start() == "http://127.0.0.1:40123/user/alice/train/"
    assert service.requests[0].body["server"] == "train"


async def test_start_failure_raises_code_and_message(service, make_spawner):
    service.start_plan = [
        {"state": "provisioning", "progress": 10},
        {
            "state": "failed",
            "errorCode": "provision_failed",
            "errorMessage": "no g4dn.xlarge capacity in us-east-1",
        },
    ]
    spawner = make_spawner()

    with pytest.raises(SpawnError) as failed:
        await spawner.start()

    assert str(failed.value) == "provision_failed: no g4dn.xlarge capacity in us-east-1"
    assert failed.value.jupyterhub_message == str(failed.value)
    assert failed.value.status_code == 500


async def test_start_stopped_before_ready_raises(service, make_spawner):
    service.start_plan = [{"state": "stopping"}, {"state": "stopped"}]
    with pytest.raises(SpawnError, match=r"^cancelled: "):
        await make_spawner().start()


@pytest.mark.parametrize(
    ("status", "code", "message"),
    [
        (400, "unknown_size", "there is no size gpu-t4 on aws"),
        (403, "quota_exceeded", "you may run 1 GPU instance at a time"),
        (409, "instance_busy", "this server already has an instance"),
    ],
)
async def test_start_refused_by_service(service, make_spawner, status, code, message):
    service.errors["start"] = (status, code, message)

    with pytest.raises(SpawnError) as refused:
        await make_spawner().start()

    # the hub relays both to the user: REST spawns answer this status and message
    assert refused.value.status_code == status
    assert str(refused.value) == f"{code}: {message}"


async def test_start_with_service_down_is_a_503(make_spawner):
    spawner = make_spawner(service_url=closed_port_url())
    with pytest.raises(SpawnError, match=r"^service_unreachable: ") as down:
        await spawner.start()
    assert down.value.status_code == 503


async def test_start_survives_a_brief_outage_while_waiting(service, make_spawner, caplog):
    caplog.set_level(logging.INFO)
    service.outage_after_start = 5

    assert await make_spawner().start() == "http://127.0.0.1:40123/user/alice/"
    assert service.outage == 0
    warnings = ours(caplog, logging.WARNING)
    assert len(warnings) == 1, "one warning per outage, not one per retry"
    assert "hub-service unreachable" in warnings[0].getMessage()


async def test_start_without_service_url_is_a_clear_error(make_spawner):
    with pytest.raises(SpawnError, match="service_url is not configured"):
        await make_spawner(service_url="").start()


# ---- validation


@pytest.mark.parametrize(
    ("options", "complaint"),
    [
        ({"size": "gpu-t4", "gpus": 8}, "unknown option(s) gpus"),
        ({"size": "GPU T4"}, "size must be a size id"),
        ({"size": "gpu-t4", "cloud": "ibm"}, "cloud must be one of local, aws, gcp, azure"),
        ({}, "size is required"),
    ],
)
async def test_start_rejects_bad_options_before_calling_the_service(
    service, make_spawner, options, complaint
):
    spawner = make_spawner()
    spawner.user_options = options

    with pytest.raises(SpawnError) as bad:
        await spawner.start()

    assert complaint in str(bad.value)
    assert bad.value.status_code == 400
    assert service.requests == []


async def test_server_named_default_is_refused(service, make_spawner):
    spawner = make_spawner("default")
    with pytest.raises(SpawnError, match="'default' is reserved") as bad:
        await spawner.start()
    assert bad.value.status_code == 400
    assert service.requests == []


async def test_apply_user_options_hook_turns_bad_options_into_a_400(make_spawner):
    # JupyterHub >= 5.3 runs this hook before start(); it passes HTTPErrors through as they are.
    spawner = make_spawner()
    with pytest.raises(web.HTTPError) as bad:
        await spawner._run_apply_user_options({"size": "gpu-t4", "spot": "yes"})
    assert bad.value.status_code == 400
    assert "spot must be true or false" in bad.value.jupyterhub_message

    await spawner._run_apply_user_options({"size": "gpu-t4", "spot": True})


async def test_default_size_fills_an_empty_spawn(service, make_spawner):
    spawner = make_spawner(default_size="cpu-small")
    spawner.user_options = {}
    await spawner.start()
    assert service.requests[0].body["options"] == {"size": "cpu-small"}


# ---- progress


async def test_progress_follows_events_until_running(service, make_spawner):
    spawner = make_spawner()
    spawner._spawn_pending = True  # as the hub sets it while start() runs
    start = asyncio.create_task(spawner.start())

    events = [event async for event in spawner.progress()]

    assert await start
    assert events == [
        {"progress": 0, "message": "Requested"},
        {"progress": 20, "message": "Provisioning g4dn.xlarge"},
        {"progress": 60, "message": "Waiting for JupyterLab"},
        {"progress": 100, "message": "Server ready"},
    ]
    after = [r.path for r in service.requests if "/events" in r.path]
    assert after[0].endswith("/instances/inst-1/events")
    assert any("after=" in path for path in after[1:])


async def test_progress_ends_when_the_instance_fails(service, make_spawner):
    service.start_plan = [
        {
            "state": "failed",
            "errorCode": "provision_failed",
            "errorMessage": "quota",
            "progress": 100,
        }
    ]
    spawner = make_spawner()
    with pytest.raises(SpawnError):
        await spawner.start()

    events = [event async for event in spawner.progress()]
    assert [e["progress"] for e in events] == [0, 100]


async def test_progress_without_a_pending_spawn_ends_at_once(make_spawner):
    assert [event async for event in make_spawner().progress()] == []


# ---- poll


async def test_poll_is_none_while_provisioning(service, make_spawner):
    service.seed("provisioning")
    assert await make_spawner().poll() is None


async def test_poll_is_none_while_running_and_stopping(service, make_spawner):
    instance = service.seed("running")
    spawner = make_spawner()
    assert await spawner.poll() is None
    instance["state"] = "stopping"
    assert await spawner.poll() is None


async def test_poll_is_zero_without_instance_or_when_stopped(service, make_spawner):
    spawner = make_spawner()
    assert await spawner.poll() == 0
    service.seed("stopped")
    assert await spawner.poll() == 0


@pytest.mark.parametrize(("exit_code", "expected"), [(3, 3), (None, 1), (0, 1)])
async def test_poll_reports_a_failed_instance_as_exited(service, make_spawner, exit_code, expected):
    service.seed("failed", errorCode="process_exited", exitCode=exit_code)
    assert await make_spawner().poll() == expected


async def test_an_end_found_before_the_hub_listens_is_reported_once_it_does(service, make_spawner):
    """JupyterHub polls from the end of start() but registers its exit callback only after the
    server answered and the proxy has its route: a crash in between must still reach it."""
    instance = service.seed("running")
    spawner = make_spawner(poll_interval=3600)
    spawner.start_polling()
    try:
        instance.update(state="failed", errorCode="process_exited", exitCode=137)
        assert await spawner.poll_and_notify() == 137
        assert spawner._poll_callback is not None, "polling goes on while nobody listens"

        heard: list[str] = []
        spawner.add_poll_callback(lambda: heard.append("stopped"))
        assert await spawner.poll_and_notify() == 137
        assert heard == ["stopped"]
        assert spawner._poll_callback is None, "told once, then the polling ends as upstream"
    finally:
        spawner.stop_polling()


async def test_a_running_server_keeps_its_callback_for_later(service, make_spawner):
    service.seed("running")
    spawner = make_spawner()
    heard: list[str] = []
    spawner.add_poll_callback(lambda: heard.append("stopped"))
    assert await spawner.poll_and_notify() is None
    assert heard == []


async def test_poll_is_none_while_the_service_is_unreachable(make_spawner, caplog):
    caplog.set_level(logging.DEBUG)
    spawner = make_spawner(service_url=closed_port_url(), poll_unreachable_limit=60)

    assert await spawner.poll() is None
    assert await spawner.poll() is None
    assert len(ours(caplog, logging.WARNING)) == 1
    assert ours(caplog, logging.ERROR) == []

    # long outage: still None, but now an error, once
    spawner._unreachable_since = time.monotonic() - 61
    assert await spawner.poll() is None
    assert await spawner.poll() is None
    errors = ours(caplog, logging.ERROR)
    assert len(errors) == 1
    assert "has not answered" in errors[0].getMessage()


async def test_poll_is_none_while_the_service_answers_5xx(service, make_spawner):
    service.seed("stopped")
    service.outage = 1
    spawner = make_spawner()
    assert await spawner.poll() is None
    assert await spawner.poll() == 0
    assert spawner._unreachable_since is None


async def test_poll_is_none_when_the_service_refuses_the_secret(service, make_spawner):
    service.seed("stopped")
    assert await make_spawner(bridge_secret="wrong").poll() is None


# ---- stop


async def test_stop_waits_until_stopped(service, make_spawner):
    service.stop_steps = 3
    spawner = make_spawner()
    await spawner.start()
    service.requests.clear()

    await spawner.stop()

    assert service.instances["inst-1"]["state"] == "stopped"
    assert (
        service.paths()
        == [f"POST {PREFIX}/api/v1/bridge/stop"]
        + [f"GET {PREFIX}/api/v1/bridge/status?user=alice&server="] * 3
    )
    assert await spawner.poll() == 0


async def test_stop_is_idempotent(service, make_spawner):
    spawner = make_spawner()
    await spawner.start()
    await spawner.stop()
    service.requests.clear()

    await spawner.stop()
    await spawner.stop()
    assert service.paths() == [f"POST {PREFIX}/api/v1/bridge/stop"] * 2


async def test_stop_gives_up_waiting_after_stop_timeout(service, make_spawner, caplog):
    service.stop_steps = 10_000
    spawner = make_spawner(stop_timeout=0)
    await spawner.start()
    await spawner.stop()
    assert service.instances["inst-1"]["state"] == "stopping"
    assert "hub-service finishes the stop" in caplog.text


async def test_stop_raises_when_the_service_stays_unreachable(make_spawner):
    spawner = make_spawner(service_url=closed_port_url(), stop_timeout=0)
    with pytest.raises(Exception, match="service_unreachable"):
        await spawner.stop()


# ---- state


def test_state_round_trip(make_spawner):
    spawner = make_spawner()
    spawner.instance_id = "inst-42"
    state = spawner.get_state()
    assert state == {"instance_id": "inst-42"}

    fresh = make_spawner()
    fresh.load_state(state)
    assert fresh.instance_id == "inst-42"
    assert fresh.get_state() == state

    fresh.clear_state()
    assert fresh.instance_id == ""
    assert fresh.get_state() == {}


def test_load_state_of_a_never_started_server(make_spawner):
    spawner = make_spawner()
    spawner.load_state({})
    assert spawner.instance_id == ""


# ---- scopes and environment


def test_server_token_scopes_extend_the_server_role(make_spawner):
    spawner = make_spawner()
    # JupyterHub's default (the `server` role), plus the service
    assert set(spawner.server_token_scopes) == {
        "users:activity!user",
        "access:servers!server",
        "access:services!service=ngsci",
    }
    assert spawner.oauth_client_allowed_scopes == ["access:services!service=ngsci"]


async def test_no_server_token_or_page_token_carries_the_admin_scope(make_spawner, monkeypatch):
    # even on a hub that defines the admin scope (configure_hub does), servers never get it
    monkeypatch.setitem(scope_definitions, "custom:ngsci:admin", {"description": "ngsci admin"})
    spawner = make_spawner(service_name="gpus")

    assert "custom:ngsci:admin" not in spawner.server_token_scopes
    assert "access:services!service=gpus" in spawner.server_token_scopes
    # what the hub gives the server's OAuth client: ours plus access to the server itself
    assert await spawner._get_oauth_client_allowed_scopes() == [
        "access:servers!server=alice/",
        "access:services!service=gpus",
    ]


@pytest.mark.parametrize("trait", ["server_token_scopes", "oauth_client_allowed_scopes"])
@pytest.mark.parametrize("scope", ["custom:ngsci:admin", "inherit"])
def test_a_configured_admin_scope_for_servers_is_refused(make_spawner, trait, scope):
    with pytest.raises(TraitError, match=f"{trait} must not hold {scope}"):
        make_spawner(**{trait: ["access:services!service=ngsci", scope]})


async def test_a_callable_scope_setting_is_checked_when_the_hub_calls_it(make_spawner):
    async def scopes(spawner):
        return ["access:services!service=ngsci", "custom:ngsci:admin"]

    spawner = make_spawner(server_token_scopes=scopes)
    with pytest.raises(TraitError, match="custom:ngsci:admin"):
        await spawner.server_token_scopes(spawner)
    fine = make_spawner(oauth_client_allowed_scopes=lambda s: ["read:users:name!user"])
    assert await fine.oauth_client_allowed_scopes(fine) == ["read:users:name!user"]


def test_configured_scopes_are_not_overridden(make_spawner):
    spawner = make_spawner(server_token_scopes=["users:activity!user", "read:users:name!user"])
    assert spawner.server_token_scopes == ["users:activity!user", "read:users:name!user"]


def test_api_url_in_env(service, make_spawner):
    # a full URL by default (the CLI in an instance refuses a bare path): the service as the
    # hub's machine reaches it, where local instances run
    assert make_spawner().get_env()["NGSCI_API_URL"] == f"{service.url}/api/v1"
    assert make_spawner().get_env()["NGSCI_API_URL"].startswith("http://127.0.0.1:")
    public = "https://hub.example.org/services/ngsci/api/v1"
    assert make_spawner(public_api_url=public).get_env()["NGSCI_API_URL"] == public


def test_a_bare_path_as_public_api_url_is_refused_naming_the_setting(make_spawner):
    with pytest.raises(TraitError, match=r"NgsciSpawner\.public_api_url must be a full"):
        make_spawner(public_api_url="/services/ngsci/api/v1")


def test_start_timeout_follows_ngsci_start_timeout(monkeypatch):
    monkeypatch.setenv("NGSCI_START_TIMEOUT", "300")
    assert NgsciSpawner().start_timeout == 300
    assert NgsciSpawner(start_timeout=42).start_timeout == 42
    monkeypatch.setenv("NGSCI_START_TIMEOUT", "soon")
    with pytest.raises(TraitError, match="NGSCI_START_TIMEOUT"):
        _ = NgsciSpawner().start_timeout


def test_cloud_friendly_timeouts(monkeypatch):
    monkeypatch.delenv("NGSCI_START_TIMEOUT", raising=False)
    spawner = NgsciSpawner()
    assert (spawner.start_timeout, spawner.http_timeout) == (900, 120)


def test_every_option_is_documented_config():
    own = {
        name: trait
        for name, trait in NgsciSpawner.class_traits(config=True).items()
        if name in NgsciSpawner.__dict__
    }
    assert "service_url" in own
    assert "poll_unreachable_limit" in own
    for name, trait in own.items():
        assert len(trait.help) > 60, f"{name} needs a real help text"


# ---- secrets


async def test_secrets_stay_out_of_logs_and_errors(service, make_spawner, caplog):
    caplog.set_level(logging.DEBUG)
    raised: list[str] = []

    spawner = make_spawner()
    await spawner.start()
    await spawner.poll()
    await spawner.stop()
    await spawner.render_options_form()

    service.errors["start"] = (403, "quota_exceeded", "no more GPUs")
    try:
        await make_spawner().start()
    except SpawnError as e:
        raised.append(str(e))
    down = make_spawner(service_url=closed_port_url(), stop_timeout=0)
    for attempt in (down.start(), down.stop(), down.poll(), down.render_options_form()):
        try:
            await attempt
        except Exception as e:
            raised.append(f"{e!s} {e!r}")

    assert len(raised) == 3
    text = caplog.text + "\n".join(raised)
    assert "alice" in caplog.text, "the spawner did log something"
    assert SECRET not in text
    assert HUB_TOKEN not in text


async def test_start_fails_when_the_service_forgets_the_instance(service, make_spawner):
    service.errors["instance"] = (404, "not_found", "no instance inst-1")
    with pytest.raises(SpawnError, match=r"^not_found: no instance inst-1") as lost:
        await make_spawner().start()
    # the user did nothing wrong: a REST spawn must not answer 404
    assert lost.value.status_code == 500
