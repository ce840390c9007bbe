"""A fake hub-service speaking the bridge contract, and spawners wired to it.

The fake answers on a real socket (tornado, 127.0.0.1, a free port), so the spawner's HTTP seam
is exercised as it is in production. Its behaviour is scripted per test: the states an instance
goes through, errors to answer with, outages.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any

import pytest
from jupyterhub.objects import Hub, Server
from tornado import web
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port
from traitlets import Unicode

from ngsci_spawner import NgsciSpawner

SECRET = "bridge-secret-do-not-log-8c1f"
HUB_TOKEN = "hub-token-do-not-log-51aa"
PREFIX = "/services/ngsci"

CATALOG: dict[str, Any] = {
    "asOf": "2025-07-01",
    "currency": "USD",
    "defaultCloud": "aws",
    "clouds": ["local", "aws", "gcp", "azure"],
    "sizes": [
        {
            "id": "cpu-small",
            "label": "Small CPU",
            "class": "cpu",
            "vcpu": 2,
            "memoryGiB": 8,
            "gpu": None,
            "offers": [
                {
                    "cloud": "local",
                    "region": "local",
                    "instanceType": "process",
                    "available": True,
                    "onDemandMicrosPerHour": 0,
                    "spotMicrosPerHour": None,
                },
                {
                    "cloud": "aws",
                    "region": "us-east-1",
                    "instanceType": "t3.large",
                    "available": True,
                    "onDemandMicrosPerHour": 83_200,
                    "spotMicrosPerHour": 31_000,
                },
            ],
        },
        {
            "id": "gpu-t4",
            "label": "T4 <GPU> & friends",
            "class": "gpu",
            "vcpu": 4,
            "memoryGiB": 16,
            "gpu": {"model": "T4", "count": 1, "memoryGiB": 16},
            "offers": [
                {
                    "cloud": "aws",
                    "region": "us-east-1",
                    "instanceType": "g4dn.xlarge",
                    "available": True,
                    "onDemandMicrosPerHour": 526_000,
                    "spotMicrosPerHour": 210_000,
                },
                {
                    "cloud": "gcp",
                    "region": "us-central1",
                    "instanceType": "n1-standard-4+t4",
                    "available": True,
                    "onDemandMicrosPerHour": 540_000,
                    "spotMicrosPerHour": None,
                },
                {
                    "cloud": "azure",
                    "region": "eastus",
                    "instanceType": "NC4as_T4_v3",
                    "available": False,
                    "onDemandMicrosPerHour": 526_000,
                    "spotMicrosPerHour": None,
                },
            ],
        },
    ],
}

RUNNING_PLAN = [
    {"state": "provisioning", "progress": 20, "message": "Provisioning g4dn.xlarge"},
    {"state": "starting", "progress": 60, "message": "Waiting for JupyterLab"},
    {"state": "running", "progress": 100, "message": "Server ready"},
]


def now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeHubService:
    """hub-service's bridge API, scripted."""

    port: int = 0
    catalog: dict[str, Any] = field(default_factory=lambda: json.loads(json.dumps(CATALOG)))
    # the states a new instance walks through, one step per GET of the instance or status
    start_plan: list[dict[str, Any]] = field(default_factory=lambda: list(RUNNING_PLAN))
    # status requests a stop takes before the instance is stopped
    stop_steps: int = 2
    requests: list[Recorded] = field(default_factory=list)
    instances: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    # route -> (status, code, message): every call of that route fails
    errors: dict[str, tuple[int, str, str]] = field(default_factory=dict)
    # the next N requests get a 503 from "the proxy" (an outage), after authentication
    outage: int = 0
    # ...and an outage that begins right after an instance was requested
    outage_after_start: int = 0
    _plans: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{PREFIX}"

    def paths(self) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.requests]

    def latest(self, user: str, server: str) -> dict[str, Any] | None:
        mine = [i for i in self.instances.values() if (i["user"], i["server"]) == (user, server)]
        return mine[-1] if mine else None

    def advance(self, instance: dict[str, Any]) -> None:
        plan = self._plans.get(instance["id"])
        if plan:
            self.transition(instance, plan.pop(0))

    def transition(self, instance: dict[str, Any], step: dict[str, Any]) -> None:
        step = dict(step)
        progress = step.pop("progress", 100)
        message = step.pop("message", step.get("state", ""))
        instance.update(step)
        if instance["state"] == "running":
            instance["readyAt"] = now()
            instance["targetUrl"] = f"http://127.0.0.1:40123{instance['baseUrl']}"
            instance["url"] = instance["baseUrl"]
        self.events.append(
            {
                "id": next(self._ids),
                "instanceId": instance["id"],
                "at": now(),
                "state": instance["state"],
                "progress": progress,
                "message": message,
            }
        )

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        instance_id = f"inst-{len(self.instances) + 1}"
        options = body["options"]
        instance = {
            "id": instance_id,
            "user": body["user"],
            "server": body["server"] or "default",
            "size": options["size"],
            "cloud": options.get("cloud", "aws"),
            "region": options.get("region", "us-east-1"),
            "spot": options.get("spot", False),
            "state": "requested",
            "errorCode": None,
            "errorMessage": None,
            "exitCode": None,
            "url": None,
            "targetUrl": None,
            "ratePerHourMicros": 526_000,
            "createdAt": now(),
            "readyAt": None,
            "stoppedAt": None,
            "baseUrl": body["baseUrl"],
        }
        self.instances[instance_id] = instance
        self._plans[instance_id] = [dict(step) for step in self.start_plan]
        self.transition(instance, {"state": "requested", "progress": 0, "message": "Requested"})
        return instance

    def seed(self, state: str, *, server: str = "default", **fields: Any) -> dict[str, Any]:
        """An instance of alice's that already is in `state` and stays there."""
        body = {"user": "alice", "server": server, "options": {"size": "gpu-t4"}, "baseUrl": "/"}
        instance = self.create(body)
        self._plans[instance["id"]] = []
        instance.update(state=state, **fields)
        return instance

    def stop(self, instance: dict[str, Any]) -> None:
        self.transition(instance, {"state": "stopping", "progress": 0, "message": "Stopping"})
        steps = [{"state": "stopping"}] * (self.stop_steps - 1)
        self._plans[instance["id"]] = [*steps, {"state": "stopped", "stoppedAt": now()}]


def public(instance: dict[str, Any] | None) -> dict[str, Any] | None:
    if instance is None:
        return None
    return {k: v for k, v in instance.items() if k != "baseUrl"}


class BridgeHandler(web.RequestHandler):
    def initialize(self, service: FakeHubService) -> None:
        self.service = service

    def check_xsrf_cookie(self) -> None:
        pass

    def fail(self, status: int, code: str, message: str) -> None:
        self.set_status(status)
        self.finish({"code": code, "message": message, "requestId": "req-test"})

    async def get(self, route: str) -> None:
        await self.handle(route)

    async def post(self, route: str) -> None:
        await self.handle(route)

    async def handle(self, route: str) -> None:
        s = self.service
        body = json.loads(self.request.body) if self.request.body else None
        s.requests.append(
            Recorded(self.request.method, self.request.uri, dict(self.request.headers), body)
        )
        if self.request.headers.get("Authorization") != f"Bearer {SECRET}":
            return self.fail(401, "unauthenticated", "bridge routes need the bridge secret")
        if s.outage > 0:
            s.outage -= 1
            self.set_status(503)
            return self.finish("<html>upstream unavailable</html>")

        parts = route.split("/")
        name = "instance" if parts[0] == "instances" and len(parts) == 2 else parts[-1]
        if name in s.errors:
            return self.fail(*s.errors[name])

        method = self.request.method
        if (method, route) == ("GET", "catalog"):
            return self.finish(s.catalog)
        if (method, route) == ("POST", "start"):
            latest = s.latest(body["user"], body["server"] or "default")
            if latest and latest["state"] not in ("stopped", "failed"):
                return self.fail(409, "instance_busy", "this server already has an instance")
            s.outage, s.outage_after_start = s.outage_after_start, 0
            self.set_status(202)
            return self.finish({"instance": public(s.create(body))})
        if (method, route) == ("POST", "stop"):
            latest = s.latest(body["user"], body["server"] or "default")
            if latest is None or latest["state"] in ("stopped", "failed"):
                self.set_status(202)
                return self.finish({"instance": None})
            if latest["state"] != "stopping":
                s.stop(latest)
            self.set_status(202)
            return self.finish({"instance": public(latest)})
        if (method, route) == ("GET", "status"):
            user = self.get_query_argument("user")
            server = self.get_query_argument("server") or "default"
            latest = s.latest(user, server)
            if latest is not None:
                s.advance(latest)
            return self.finish({"instance": public(latest)})
        if method == "GET" and parts[0] == "instances":
            instance = s.instances.get(parts[1])
            if instance is None:
                return self.fail(404, "not_found", f"no instance {parts[1]}")
            if len(parts) == 2:
                s.advance(instance)
                return self.finish(public(instance))
            if parts[2] == "events":
                after = int(self.get_query_argument("after", "0"))
                events = [
                    e for e in s.events if e["instanceId"] == instance["id"] and e["id"] > after
                ]
                return self.finish({"events": events})
        return self.fail(404, "not_found", f"no route {method} {route}")


@pytest.fixture
async def service() -> AsyncIterator[FakeHubService]:
    fake = FakeHubService()
    app = web.Application([(rf"{PREFIX}/api/v1/bridge/(.*)", BridgeHandler, {"service": fake})])
    sock, fake.port = bind_unused_port()
    server = HTTPServer(app)
    server.add_sockets([sock])
    yield fake
    server.stop()
    await server.close_all_connections()


class ExampleSpawner(NgsciSpawner):
    """NgsciSpawner without a hub database: the server name is a plain attribute."""

    server_name = Unicode("")

    @property
    def name(self) -> str:
        return self.server_name


@pytest.fixture
def make_spawner(service: FakeHubService) -> Callable[..., ExampleSpawner]:
    def make(server_name: str = "", **traits: Any) -> ExampleSpawner:
        user = SimpleNamespace(name="alice", url="/user/alice/")
        defaults = {
            "service_url": service.url,
            "bridge_secret": SECRET,
            "start_poll_interval": 0.01,
            "request_timeout": 5,
        }
        spawner = ExampleSpawner(
            user=user,
            hub=Hub(base_url="/hub/"),
            api_token=HUB_TOKEN,
            oauth_client_id="jupyterhub-user-alice",
            server_name=server_name,
            **{**defaults, **traits},
        )
        base_url = f"/user/alice/{server_name}/" if server_name else "/user/alice/"
        spawner.server = Server(base_url=base_url)
        spawner.user_options = {"size": "gpu-t4", "cloud": "aws"}
        return spawner

    return make
