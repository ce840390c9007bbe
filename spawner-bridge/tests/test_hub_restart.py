"""A hub restarted while a start was under way: `get_url()` recovers the server's URL from
hub-service, so the new hub adopts the machine instead of stopping it (tests/src/faults.test.ts
shows the whole path with a real hub)."""

from __future__ import annotations

import pytest

from .conftest import PREFIX


async def test_get_url_waits_for_the_instance_to_run(service, make_spawner):
    instance = service.seed("starting")
    service._plans[instance["id"]] = [{"state": "starting"}, {"state": "running"}]
    spawner = make_spawner()
    assert spawner.server.url != "http://127.0.0.1:40123/"

    assert await spawner.get_url() == "http://127.0.0.1:40123/"
    assert spawner.get_state() == {"instance_id": instance["id"]}
    assert [p.split("?")[0] for p in service.paths()] == [f"GET {PREFIX}/api/v1/bridge/status"] * 2


async def test_get_url_waits_out_the_service_starting_after_the_hub(service, make_spawner):
    service.seed("running", targetUrl="http://10.0.3.17:8888/user/alice/")
    service.outage = 3
    assert await make_spawner().get_url() == "http://10.0.3.17:8888/user/alice/"


@pytest.mark.parametrize("state", ["stopped", "failed"])
async def test_get_url_keeps_the_hubs_url_for_an_ended_instance(service, make_spawner, state):
    service.seed(state)
    spawner = make_spawner()
    assert await spawner.get_url() == spawner.server.url
    assert spawner.get_state() == {}


async def test_get_url_gives_up_after_start_timeout(service, make_spawner):
    service.seed("starting")
    spawner = make_spawner(start_timeout=0)
    assert await spawner.get_url() == spawner.server.url


async def test_a_completed_start_keeps_its_url_while_the_service_is_away(service, make_spawner):
    service.seed("running", targetUrl="http://10.0.3.17:8888/user/alice/")
    service.outage = 100
    spawner = make_spawner()
    spawner.load_state({"instance_id": "inst-1"})
    assert await spawner.get_url() == spawner.server.url
    assert len(service.requests) == 1


# ---- the hub's check of its servers at its start (docs/deploy-docker.md, hub container restart)


@pytest.mark.parametrize("state", ["stopped", "failed"])
async def test_the_start_check_waits_for_the_service_and_reports_an_ended_instance(
    service, make_spawner, state
):
    # the hub checks its servers before its managed service is up; the instance died with the
    # hub's container. "Still running" here kept the user on "starting up… 0%".
    service.seed(state, exitCode=137)
    service.outage = 3
    spawner = make_spawner()
    spawner.load_state({"instance_id": "inst-1"})
    spawner._check_pending = True

    status = await spawner.poll()

    if state == "stopped":
        assert status == 0
    else:
        assert status == 137
    assert len(service.requests) == 4


async def test_the_start_check_reports_a_running_instance_as_running(service, make_spawner):
    service.seed("running")
    service.outage = 2
    spawner = make_spawner()
    spawner._check_pending = True
    assert await spawner.poll() is None
    assert len(service.requests) == 3


async def test_the_start_check_gives_up_after_start_timeout(service, make_spawner):
    service.seed("stopped")
    service.outage = 100
    spawner = make_spawner(start_timeout=0)
    spawner._check_pending = True
    assert await spawner.poll() is None


async def test_the_start_check_does_not_wait_out_a_refused_secret(service, make_spawner):
    service.seed("stopped")
    spawner = make_spawner(bridge_secret="wrong")
    spawner._check_pending = True
    assert await spawner.poll() is None
    assert len(service.requests) == 1


async def test_a_later_poll_does_not_wait_for_the_service(service, make_spawner):
    service.seed("stopped")
    service.outage = 1
    spawner = make_spawner()
    assert await spawner.poll() is None
    assert len(service.requests) == 1
