"""`NgsciSpawner`: a JupyterHub Spawner that hands start, stop, poll and progress to hub-service.

The hub stays the orchestrator (every start and stop goes through it); hub-service owns the
machines and the money, keyed by (user, server name). The hub's own spawner state holds only the
instance id, so a restarted hub asks the service instead of remembering anything.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import re
import time
from collections.abc import AsyncIterator
from typing import Any

from jupyterhub.spawner import Spawner
from jupyterhub.utils import url_path_join
from traitlets import Float, Integer, TraitError, Unicode, default, validate

from .client import BridgeClient, ServiceError
from .errors import SpawnError
from .options import options_from_form, render_form, render_unavailable, validate_options

ACTIVE_STATES = frozenset({"requested", "provisioning", "starting", "running", "stopping"})
# Once an instance reaches one of these, a spawn's progress has nothing more to say.
SETTLED_STATES = frozenset({"running", "stopped", "failed"})
DONE_STATES = frozenset({"stopped", "failed"})

# ngsci's API calls JupyterHub's default server (name '') "default", so a named server called
# "default" would collide with it; names must also stand in a URL path. The rule is defined once
# in contract/src/server-name.ts; this copy is checked against its examples
# (contract/server-names.json) by tests/test_server_names.py.
RESERVED_SERVER_NAME = "default"
SERVER_NAME_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$"


class NgsciSpawner(Spawner):
    """Starts single-user servers on machines that ngsci's hub-service provisions.

    Configure it with `ngsci_spawner.hubconfig.configure_hub`, or by hand with
    `c.JupyterHub.spawner_class = "ngsci"` plus `service_url` and `bridge_secret`.
    """

    # ---- where the service is, and how to authenticate to it

    service_url = Unicode(
        "",
        help="""
        Base URL of the ngsci hub-service as the hub reaches it, including the service prefix.
        The bridge API lives under `<service_url>/api/v1/bridge/`.

        Example: `http://127.0.0.1:10101/services/ngsci` for a managed service named `ngsci`
        listening on port 10101 (JupyterHub's proxy keeps the `/services/ngsci/` prefix, so the
        service serves its routes under it). `configure_hub()` sets this for you.
        """,
    ).tag(config=True)

    bridge_secret = Unicode(
        help="""
        Shared secret that authenticates the spawner to hub-service's bridge API
        (`Authorization: Bearer <secret>`). hub-service must be started with the same value in
        `NGSCI_BRIDGE_SECRET`.

        Default: the hub's own `NGSCI_BRIDGE_SECRET` environment variable. It is never logged
        and never passed to single-user servers.
        """,
    ).tag(config=True)

    @default("bridge_secret")
    def _default_bridge_secret(self) -> str:
        return os.environ.get("NGSCI_BRIDGE_SECRET", "")

    service_name = Unicode(
        "ngsci",
        help="""
        Name of the hub-service in `c.JupyterHub.services`. Single-user servers and their
        browser tokens get `access:services!service=<service_name>` so that the JupyterLab
        extension and the `%ngsci` magic can call the service; it also names the public API
        path (`/services/<service_name>/api/v1`).
        """,
    ).tag(config=True)

    admin_scope = Unicode(
        "custom:ngsci:admin",
        help="""
        Custom scope that unlocks hub-service's admin API. A single-user server runs code its
        user controls, so this scope never reaches one: NgsciSpawner leaves it out of the
        server's `$JUPYTERHUB_API_TOKEN` and out of the server's OAuth client (the page token
        JupyterLab uses), and refuses a configured `server_token_scopes` or
        `oauth_client_allowed_scopes` that holds it or `inherit` (which would carry it). Admins
        reach the admin API through hub-service's own hub OAuth login (the admin panel's
        "Sign in as admin") or with a token they create on the hub's token page.

        Set it to the value of hub-service's `NGSCI_ADMIN_SCOPE` when that differs.
        """,
    ).tag(config=True)

    public_api_url = Unicode(
        "",
        help="""
        Value of `NGSCI_API_URL` in single-user servers: where they reach the ngsci API (the
        `ngsci` CLI, the `%ngsci` magic and the agent inside an instance need a full URL).

        Default (empty): derived from `service_url`, `<service_url>/api/v1`, e.g.
        `http://127.0.0.1:10101/services/ngsci/api/v1`: the service as the hub's own machine
        reaches it, which is where local instances run. Set a full URL such as
        `https://hub.example.org/services/ngsci/api/v1` when instances must reach the service by
        the hub's public address. Cloud machines (hub-service's terraform provisioner) do not use
        this value: hub-service sets their `NGSCI_API_URL`, and their `JUPYTERHUB_API_URL` and
        `JUPYTERHUB_ACTIVITY_URL`, from its `NGSCI_VM_HUB_URL` (the hub's address as machines
        reach it), since the hub computes these for its own host. A value that is not an
        http(s) URL is refused when the hub loads its config (a bare path made `ngsci status`
        fail inside instances with "NGSCI_API_URL is a path").
        """,
    ).tag(config=True)

    @validate("public_api_url")
    def _full_public_api_url(self, proposal: Any) -> str:
        value = str(proposal.value)
        if value and not re.match(r"^https?://[^/\s]+", value):
            raise TraitError(
                "NgsciSpawner.public_api_url must be a full http(s) URL such as"
                f" https://hub.example.org/services/ngsci/api/v1, not {value!r}"
            )
        return value

    # ---- spawn options

    default_size = Unicode(
        "",
        help="""
        Size used when a spawn carries no options at all, e.g. the admin panel's start button
        or a REST spawn with an empty body (a server that was started before reuses its last
        options instead). Empty (the default): such spawns are refused with a 400 that says a
        size is required. Example: `"cpu-small"`.
        """,
    ).tag(config=True)

    # ---- timing

    start_timeout = Integer(
        help="""
        Seconds the hub waits for `start()` to return before giving up and stopping the
        instance. ngsci raises JupyterHub's default of 60 s to 900 s, because a cloud GPU
        machine takes minutes to provision and boot. Lower it for local-only hubs.

        Default: the hub's `NGSCI_START_TIMEOUT` environment variable when set, else 900.
        """,
    ).tag(config=True)

    @default("start_timeout")
    def _default_start_timeout(self) -> int:
        raw = os.environ.get("NGSCI_START_TIMEOUT", "")
        if not raw:
            return 900
        try:
            value = int(raw)
        except ValueError:
            value = 0
        if value <= 0:
            raise TraitError(
                f"NGSCI_START_TIMEOUT must be a positive number of seconds, not {raw!r}"
            )
        return value

    http_timeout = Integer(
        120,
        help="""
        Seconds the hub waits, after `start()` returned the server's URL, for the server to
        answer. ngsci raises JupyterHub's default of 30 s to 120 s: hub-service already waited
        for `GET <url>/api` before reporting `running`, but a cloud instance's network path
        through the proxy may still need a moment.
        """,
    ).tag(config=True)

    start_poll_interval = Float(
        1.0,
        help="""
        Seconds between two questions to hub-service while waiting on an instance: during
        `start()` (instance state), `progress()` (new events) and `stop()` (until stopped).
        """,
    ).tag(config=True)

    stop_timeout = Integer(
        120,
        help="""
        Seconds `stop()` waits for the instance to reach `stopped` (or `failed`). If it takes
        longer, `stop()` logs a warning and returns: hub-service finishes the stop on its own
        and keeps billing exact. If the service cannot be reached at all for this long, `stop()`
        raises, so the failure is visible in the hub's log.
        """,
    ).tag(config=True)

    poll_unreachable_limit = Integer(
        600,
        help="""
        Seconds of continuous unreachability of hub-service after which `poll()` logs an
        error (once per outage) instead of warnings. 0: never escalate.

        `poll()` keeps answering "still running" (None) while the service cannot be reached,
        however long that lasts: reporting "stopped" would make the hub drop the route and the
        server's tokens while the machine may still be running and billing. An operator has to
        look; the error log line is the cue. The hub's check of its servers at its own start is
        the exception: there `poll()` waits for hub-service (up to `start_timeout`), see `poll()`.
        """,
    ).tag(config=True)

    request_timeout = Float(
        30.0,
        help="""
        Seconds to wait for one answer from hub-service (connect and response). A slower
        answer counts as the service being unreachable.
        """,
    ).tag(config=True)

    # ---- state kept in the hub's database

    instance_id = Unicode(
        "",
        help="The hub-service instance this server runs on; the only state persisted.",
    )

    _unreachable_since: float | None = None
    _unreachable_escalated = False

    # ---- defaults of JupyterHub's own traits

    @default("options_form")
    def _default_options_form(self) -> Any:
        # A callable: JupyterHub awaits it for every spawn page, so prices are always current.
        return _options_form

    @default("options_from_form")
    def _default_options_from_form(self) -> Any:
        return options_from_form

    @default("apply_user_options")
    def _default_apply_user_options(self) -> Any:
        # JupyterHub >= 5.3 runs this before start(), so bad options become a clean 400 even
        # for a slow spawn; start() checks again for older hubs and for overridden hooks.
        return _check_user_options

    @default("server_token_scopes")
    def _default_server_token_scopes(self) -> list[str]:
        # JupyterHub's default for an empty list is the `server` role's scopes; keep them and
        # add ours, so $JUPYTERHUB_API_TOKEN can still post activity and reach the service.
        return sorted(set(self._server_role_scopes()) | set(self.ngsci_scopes()))

    @default("oauth_client_allowed_scopes")
    def _default_oauth_client_allowed_scopes(self) -> list[str]:
        # The hub always adds access to the server itself; an empty list would mean nothing else.
        return self.ngsci_scopes()

    @validate("server_token_scopes", "oauth_client_allowed_scopes")
    def _no_admin_scope_for_servers(self, proposal: Any) -> Any:
        # Code the user controls runs in the server: an admin scope there is the user's.
        value = proposal.value
        if callable(value):
            return _checked_scopes(value, proposal.trait.name, self.admin_scope)
        _refuse_admin_scopes(value, proposal.trait.name, self.admin_scope)
        return value

    def ngsci_scopes(self) -> list[str]:
        """Scopes a server's tokens need for ngsci: access to the service, never its admin API."""
        return [f"access:services!service={self.service_name}"]

    def _server_role_scopes(self) -> list[str]:
        from jupyterhub import orm, roles

        if self.db is not None:
            role = orm.Role.find(self.db, "server")
            if role is not None:
                return list(role.scopes)
        return next(r["scopes"] for r in roles.get_default_roles() if r["name"] == "server")

    # ---- environment

    def get_env(self) -> dict[str, str]:
        env: dict[str, str] = super().get_env()
        env["NGSCI_API_URL"] = self.api_url()
        return env

    def api_url(self) -> str:
        """Where single-user servers reach the ngsci API (`NGSCI_API_URL`)."""
        if self.public_api_url:
            return self.public_api_url
        if re.match(r"^https?://", self.service_url):
            return f"{self.service_url.rstrip('/')}/api/v1"
        # hub.base_url is "<base url>hub/"; JupyterHub derives JUPYTERHUB_BASE_URL the same way.
        base_url = self.hub.base_url[: -len("hub/")] if self.hub else "/"
        return str(url_path_join(base_url, "services", self.service_name, "api/v1"))

    # ---- lifecycle

    async def start(self) -> str:
        self.check_server_name()
        options = validate_options(self.user_options, default_size=self.default_size)
        client = self._client()
        self.instance_id = ""
        try:
            instance = await client.start(
                user=self.user.name,
                server=self.name,
                options=options,
                env=self.get_env(),
                base_url=self.server.base_url,
            )
        except ServiceError as e:
            raise _refused(e) from None
        self.instance_id = str(instance["id"])
        self.log.info(
            "ngsci instance %s requested for %s: %s",
            self.instance_id,
            self._log_name,
            options,
        )
        return await self._wait_until_running(client, instance)

    async def _wait_until_running(self, client: BridgeClient, instance: dict[str, Any]) -> str:
        outage = _Outage(self.log, f"waiting for instance {self.instance_id}")
        while True:
            state = instance.get("state")
            if state == "running":
                target = instance.get("targetUrl")
                if not target:
                    raise SpawnError(
                        "bad_response: hub-service reported the instance running without a URL",
                        code="bad_response",
                        status_code=500,
                    )
                self.log.info("ngsci instance %s is running", self.instance_id)
                return str(target)
            if state in DONE_STATES:
                raise _instance_failed(instance)

            try:
                # the service answers as soon as the state changes (or after `wait` seconds)
                instance = await client.instance(
                    self.instance_id,
                    changed_from=str(state),
                    wait=max(0.0, min(20.0, self.request_timeout - 5)),
                )
            except ServiceError as e:
                if not e.transient:
                    # e.g. the service lost the instance (404): not the user's doing, so a 500
                    raise _refused(e, status_code=500) from None
                # A service restart mid-provisioning is expected to be brief; the hub's
                # start_timeout bounds the wait.
                outage.failed(e)
                await asyncio.sleep(self.start_poll_interval)
            else:
                outage.recovered()
                # a service without long polls answers at once: don't spin
                await asyncio.sleep(min(0.05, self.start_poll_interval))

    async def progress(self) -> AsyncIterator[dict[str, Any]]:
        # start() learns the instance id only after its POST; the hub asks for progress sooner.
        while not self.instance_id:
            if not self._spawn_pending:
                return
            await asyncio.sleep(min(0.2, self.start_poll_interval))

        instance_id = self.instance_id
        client = self._client()
        after: int | None = None
        while self.instance_id == instance_id:
            try:
                events = await client.events(instance_id, after)
            except ServiceError as e:
                if not e.transient:
                    self.log.warning("No progress for %s: %s", self._log_name, e)
                    return
                events = []
            for event in events:
                if isinstance(event.get("id"), int):
                    after = event["id"]
                yield {
                    "progress": max(0, min(100, int(event.get("progress") or 0))),
                    "message": str(event.get("message") or event.get("state") or ""),
                }
                if event.get("state") in SETTLED_STATES:
                    return
            await asyncio.sleep(self.start_poll_interval)

    async def poll(self) -> int | None:
        """None while the instance is active (or hub-service cannot tell), else an exit status.

        At its own start the hub checks every server it has a record of ("check" pending, shown
        to the user as "Your server is starting up… 0%") before it starts its managed services,
        so hub-service cannot answer yet. "Still running" then made the hub wait `http_timeout`
        for a server that may be gone (e.g. killed with the hub's container), keeping the spawn
        page blocked. During that check, poll() waits for hub-service (up to `start_timeout`)
        and answers what it says: an instance that ended while the hub was down is reported
        stopped at once, and the user gets the spawn form back.
        """
        client = self._client()
        checking = bool(getattr(self, "_check_pending", False))
        deadline = time.monotonic() + self.start_timeout
        outage = _Outage(self.log, f"checking {self._log_name} at the hub's start")
        while True:
            try:
                instance = await client.status(user=self.user.name, server=self.name)
                break
            except ServiceError as e:
                if checking and e.transient and time.monotonic() < deadline:
                    outage.failed(e)
                    await asyncio.sleep(self.start_poll_interval)
                    continue
                self._note_unreachable(e)
                # Never "stopped" on a guess: see poll_unreachable_limit.
                return None
        outage.recovered()
        if self._unreachable_since is not None:
            self.log.info("hub-service answers again about %s", self._log_name)
            self._unreachable_since = None
            self._unreachable_escalated = False

        if instance is None:
            return 0
        state = instance.get("state")
        if state == "stopped":
            return 0
        if state == "failed":
            exit_code = instance.get("exitCode")
            # a failed instance must not look like a clean exit
            return exit_code if isinstance(exit_code, int) and exit_code != 0 else 1
        # active, or a state this version does not know: still running as far as we can tell
        return None

    async def poll_and_notify(self) -> int | None:
        """The hub's periodic poll, which must not lose an end it finds before anyone listens.

        JupyterHub starts polling as soon as `start()` returns, but registers the callback that
        drops an ended server (`user_stopped`) only once it has waited for the server to answer
        and added its route to the proxy. The base class stops polling at the first exit status
        it sees, with or without a callback: a server that died in that window (a crash at
        start-up, a machine lost while the proxy was slow) then stayed "running" in the hub for
        good, its user shown a server that was gone. While nobody listens, an exit is left for
        the next poll, which finds the callback registered; a spawn that fails instead is
        stopped by the hub, and that stop ends the polling.
        """
        if self._callbacks:
            ended: int | None = await super().poll_and_notify()
            return ended
        status = await self.poll()
        if status is not None:
            self.log.info(
                "%s ended (exit status %s) before the hub listens for its end; polling on",
                self._log_name,
                status,
            )
        return status

    async def get_url(self) -> str:
        """The running instance's URL, from hub-service.

        JupyterHub asks this at its start of every server whose `poll()` says running. A hub that
        was restarted while a start was still under way (e.g. the start a resize asked for) has
        no URL of that server, so the default (the URL in the hub's database) would never answer
        and the hub would stop a machine that is starting fine. At hub start the managed service
        comes up after this is asked: waits for it, and for the instance to run, up to
        `start_timeout`; an instance that ended, or none, keeps the database's URL. A server whose
        start had completed (its instance id is in the hub's state) keeps the database's URL while
        the service cannot be reached: that is the URL its start returned.
        """
        known = self.server.url if self.server else ""
        client = self._client()
        deadline = time.monotonic() + self.start_timeout
        outage = _Outage(self.log, f"recovering the URL of {self._log_name}")
        while True:
            try:
                instance = await client.status(user=self.user.name, server=self.name)
            except ServiceError as e:
                if self.instance_id or not e.transient or time.monotonic() >= deadline:
                    return known
                outage.failed(e)
                await asyncio.sleep(self.start_poll_interval)
                continue
            outage.recovered()
            state = instance.get("state") if instance else None
            if state == "running" and instance and instance.get("targetUrl"):
                self.instance_id = str(instance["id"])
                url = str(instance["targetUrl"])
                if url != known:
                    self.log.info(
                        "ngsci instance %s of %s runs at %s", instance["id"], self._log_name, url
                    )
                return url
            if state is None or state in DONE_STATES or time.monotonic() >= deadline:
                return known
            await asyncio.sleep(self.start_poll_interval)

    def _note_unreachable(self, error: ServiceError) -> None:
        now = time.monotonic()
        if self._unreachable_since is None:
            self._unreachable_since = now
            self.log.warning(
                "Cannot ask hub-service about %s (%s); reporting it as still running",
                self._log_name,
                error,
            )
            return
        down_for = now - self._unreachable_since
        limit = self.poll_unreachable_limit
        if limit and down_for >= limit and not self._unreachable_escalated:
            self._unreachable_escalated = True
            self.log.error(
                "hub-service has not answered about %s for %d s (%s). The hub keeps the server"
                " as running; check hub-service, or stop the server once the machine is gone.",
                self._log_name,
                down_for,
                error,
            )
        else:
            self.log.debug("hub-service still unreachable for %s: %s", self._log_name, error)

    async def stop(self, now: bool = False) -> None:
        """Ask hub-service to stop this server's instance and wait until it has.

        Idempotent: stopping a stopped server is a no-op. With `now=True` (the hub is shutting
        down) the request is sent but not waited for.
        """
        client = self._client()
        deadline = time.monotonic() + self.stop_timeout
        outage = _Outage(self.log, f"stopping {self._log_name}")
        while True:
            try:
                instance = await client.stop(user=self.user.name, server=self.name)
                break
            except ServiceError as e:
                if not e.transient or time.monotonic() >= deadline:
                    raise
                outage.failed(e)
            await asyncio.sleep(self.start_poll_interval)

        if instance is None or now:
            return
        self.log.info("Stopping ngsci instance %s of %s", instance.get("id"), self._log_name)
        while instance is not None and instance.get("state") not in DONE_STATES:
            if time.monotonic() >= deadline:
                self.log.warning(
                    "ngsci instance %s of %s still %s after %d s; hub-service finishes the stop",
                    instance.get("id"),
                    self._log_name,
                    instance.get("state"),
                    self.stop_timeout,
                )
                return
            await asyncio.sleep(self.start_poll_interval)
            try:
                instance = await client.status(user=self.user.name, server=self.name)
            except ServiceError as e:
                if not e.transient:
                    raise
                outage.failed(e)
            else:
                outage.recovered()

    # ---- state (not coroutines; the hub stores what get_state returns)

    def get_state(self) -> dict[str, Any]:
        state: dict[str, Any] = super().get_state()
        if self.instance_id:
            state["instance_id"] = self.instance_id
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self.instance_id = str(state.get("instance_id") or "")

    def clear_state(self) -> None:
        super().clear_state()
        self.instance_id = ""

    # ---- the spawn form

    async def render_options_form(self) -> str:
        """The spawn form, built from hub-service's catalog (see `options.render_form`)."""
        if not self.service_url:
            return render_unavailable("NgsciSpawner.service_url is not configured.")
        try:
            # with the user's runway per size: budget left at each rate, quota refusals, idle stop
            catalog = await self._client().catalog(user=self.user.name)
        except ServiceError as e:
            self.log.warning("Cannot fetch the ngsci catalog for %s: %s", self._log_name, e)
            return render_unavailable(f"The ngsci service did not send its price list ({e.code}).")
        try:
            return render_form(catalog, previous=self.user_options)
        except (KeyError, TypeError, ValueError, AttributeError):
            self.log.exception("Unreadable ngsci catalog")
            return render_unavailable("The ngsci service sent a price list this hub cannot read.")

    # ---- helpers

    def check_server_name(self) -> None:
        """Refuse server names that ngsci cannot address (see RESERVED_SERVER_NAME)."""
        name = self.name
        if name == RESERVED_SERVER_NAME:
            raise SpawnError(
                f"The server name '{RESERVED_SERVER_NAME}' is reserved: ngsci uses it for your"
                " default server. Choose another name.",
                code="invalid_server_name",
            )
        # fullmatch: `$` alone would let a trailing newline through, which the contract refuses
        if name and not re.fullmatch(SERVER_NAME_PATTERN, name):
            raise SpawnError(
                f"ngsci cannot run a server named {name!r}: use lower-case letters, digits and"
                " inner dashes, at most 40 characters.",
                code="invalid_server_name",
            )

    def _client(self) -> BridgeClient:
        if not self.service_url:
            raise SpawnError(
                "NgsciSpawner.service_url is not configured; see configure_hub().",
                code="not_configured",
                status_code=500,
            )
        return BridgeClient(self.service_url, self.bridge_secret, timeout=self.request_timeout)


class _Outage:
    """Logs a run of failed calls once at warning level, and the recovery once."""

    def __init__(self, log: Any, doing: str) -> None:
        self.log = log
        self.doing = doing
        self.down = False

    def failed(self, error: ServiceError) -> None:
        if not self.down:
            self.log.warning("hub-service unreachable while %s (%s); retrying", self.doing, error)
        self.down = True

    def recovered(self) -> None:
        if self.down:
            self.log.info("hub-service reachable again while %s", self.doing)
        self.down = False


async def _options_form(spawner: NgsciSpawner) -> str:
    return await spawner.render_options_form()


def _check_user_options(spawner: NgsciSpawner, user_options: dict[str, Any]) -> None:
    spawner.check_server_name()
    validate_options(user_options, default_size=spawner.default_size)


def _refused(error: ServiceError, *, status_code: int | None = None) -> SpawnError:
    """A bridge error to what the hub shows: the service's code and message, and a status."""
    if status_code is not None:
        status = status_code
    elif error.status is None or error.status >= 500:
        status = 503
    elif error.status == 401:
        # the hub's secret was refused: the hub's problem, not the user's credentials
        status = 500
    else:
        status = error.status
    return SpawnError(f"{error.code}: {error.message}", code=error.code, status_code=status)


def _instance_failed(instance: dict[str, Any]) -> SpawnError:
    if instance.get("state") == "failed":
        code = instance.get("errorCode") or "provision_failed"
        message = instance.get("errorMessage") or "the instance failed to start"
    else:
        code = instance.get("errorCode") or "cancelled"
        message = instance.get("errorMessage") or "the instance was stopped before it was ready"
    return SpawnError(f"{code}: {message}", code=str(code), status_code=500)


def _refuse_admin_scopes(scopes: Any, trait: str, admin_scope: str) -> None:
    forbidden = {"inherit", admin_scope} - {""}
    bad = sorted(forbidden.intersection(scopes or []))
    if bad:
        raise TraitError(
            f"NgsciSpawner.{trait} must not hold {', '.join(bad)}: a single-user server runs"
            " code its user controls, so an admin scope there is that user's. Admins use the"
            " admin panel's sign-in or a token from the hub's token page instead."
        )


def _checked_scopes(fn: Any, trait: str, admin_scope: str) -> Any:
    """Wraps a callable scope setting so that what it returns is checked like a list."""

    async def checked(spawner: Any) -> Any:
        scopes = fn(spawner)
        if inspect.isawaitable(scopes):
            scopes = await scopes
        _refuse_admin_scopes(scopes, trait, admin_scope)
        return scopes

    return checked
