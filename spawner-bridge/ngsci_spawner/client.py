"""The one HTTP seam between the spawner and hub-service's bridge API (`/api/v1/bridge/*`).

Every call goes through `BridgeClient._call`, which adds the bridge secret and turns every failure
into one `ServiceError` carrying the service's `code` and `message`. Tests replace the service,
never this module's internals.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlencode

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

# tornado answers 599 for connection failures and timeouts: no HTTP status ever came back.
_NO_RESPONSE = 599


class ServiceError(Exception):
    """A bridge call that failed: the service answered with an error, or did not answer.

    `status` is the HTTP status, or None when the service could not be reached. `code` is the
    service's machine-readable code (`unknown_size`, `instance_busy`...), or `service_unreachable`
    / `bad_response` when the service itself never produced one.
    """

    def __init__(
        self,
        status: int | None,
        code: str,
        message: str,
        request_id: str | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        # JupyterHub shows this attribute, when present, on the spawn page and in API errors.
        self.jupyterhub_message = f"{code}: {message}"

    @property
    def transient(self) -> bool:
        """True when retrying later may succeed: no answer at all, or a 5xx."""
        return self.status is None or self.status >= 500


class BridgeClient:
    """Typed calls to the bridge API. Returns parsed JSON; raises `ServiceError`."""

    def __init__(
        self,
        service_url: str,
        secret: str,
        *,
        timeout: float = 30.0,
        http_client: AsyncHTTPClient | None = None,
    ) -> None:
        self._base = service_url.rstrip("/") + "/api/v1/bridge"
        self._secret = secret
        self._timeout = timeout
        self._http = http_client

    async def catalog(self, user: str | None = None) -> dict[str, Any]:
        """The catalog; for a `user`, with their runway per size (`runway`)."""
        return await self._call(
            "GET", "/catalog" + (f"?{urlencode({'user': user})}" if user else "")
        )

    async def start(
        self,
        *,
        user: str,
        server: str,
        options: dict[str, Any],
        env: dict[str, str],
        base_url: str,
    ) -> dict[str, Any]:
        body = {"user": user, "server": server, "options": options, "env": env, "baseUrl": base_url}
        instance = _instance_of(await self._call("POST", "/start", body), required=True)
        if instance is None:  # required=True raised already; this tells the type checker
            raise ServiceError(None, "bad_response", "answer without an instance")
        return instance

    async def instance(
        self, instance_id: str, *, changed_from: str | None = None, wait: float = 0
    ) -> dict[str, Any]:
        """The instance; with `changed_from`, the service holds the answer up to `wait` seconds
        until the state differs from it (a long poll: no latency, and few requests)."""
        path = f"/instances/{quote(instance_id, safe='')}"
        if changed_from and wait > 0:
            path += "?" + urlencode({"unless": changed_from, "wait": round(wait, 1)})
        return await self._call("GET", path)

    async def events(self, instance_id: str, after: int | None = None) -> list[dict[str, Any]]:
        path = f"/instances/{quote(instance_id, safe='')}/events"
        if after is not None:
            path += "?" + urlencode({"after": after})
        answer = await self._call("GET", path)
        events = answer.get("events")
        if not isinstance(events, list):
            raise ServiceError(None, "bad_response", "events answer without an events list")
        return events

    async def stop(self, *, user: str, server: str) -> dict[str, Any] | None:
        return _instance_of(await self._call("POST", "/stop", {"user": user, "server": server}))

    async def status(self, *, user: str, server: str) -> dict[str, Any] | None:
        query = urlencode({"user": user, "server": server})
        return _instance_of(await self._call("GET", f"/status?{query}"))

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        request = HTTPRequest(
            self._base + path,
            method=method,
            headers={
                "Authorization": f"Bearer {self._secret}",
                "Accept": "application/json",
                "Content-Type": "application/json",
            },
            body=json.dumps(body) if body is not None else None,
            connect_timeout=self._timeout,
            request_timeout=self._timeout,
        )
        http = self._http or AsyncHTTPClient()
        try:
            response = await http.fetch(request, raise_error=False)
        except HTTPClientError as e:
            # raise_error=False still raises for timeouts (599): nothing came back.
            raise ServiceError(None, "service_unreachable", _describe(e, path)) from None
        except OSError as e:
            raise ServiceError(None, "service_unreachable", _describe(e, path)) from None

        if response.code == _NO_RESPONSE:
            raise ServiceError(
                None, "service_unreachable", _describe(response.error or "no answer", path)
            )
        text = response.body.decode("utf-8", "replace") if response.body else ""
        if response.code >= 400:
            raise _error_from(response.code, text, path)
        try:
            return json.loads(text) if text else {}
        except ValueError:
            raise ServiceError(
                response.code, "bad_response", f"{method} {path} answered with non-JSON"
            ) from None


def _instance_of(answer: Any, *, required: bool = False) -> dict[str, Any] | None:
    instance = answer.get("instance") if isinstance(answer, dict) else None
    if instance is not None and not isinstance(instance, dict):
        raise ServiceError(None, "bad_response", "answer with a malformed instance")
    if instance is None and required:
        raise ServiceError(None, "bad_response", "answer without an instance")
    return instance


def _error_from(status: int, text: str, path: str) -> ServiceError:
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("code"), str):
        return ServiceError(
            status, body["code"], str(body.get("message", "")), body.get("requestId")
        )
    # Not the service's error shape (a proxy's HTML page, say): report the status only.
    return ServiceError(status, f"http_{status}", f"{path} answered HTTP {status}")


def _describe(error: object, path: str) -> str:
    # The exception text names host and port at most; the secret only ever travels in a header.
    return f"hub-service did not answer {path}: {error}"
