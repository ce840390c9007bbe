"""The error a spawn fails with, shaped so JupyterHub shows its message to the user as it is."""

from __future__ import annotations

import re

from tornado import web

try:  # JupyterHub >= 6: the hub logs these without a traceback and counts them as refusals.
    from jupyterhub.spawner import SpawnException as _SpawnBase
except ImportError:  # JupyterHub 5
    _SpawnBase = web.HTTPError


class SpawnError(_SpawnBase):
    """A spawn refused (bad options, quota...) or failed (the instance did not come up).

    `code` is machine-readable (`validation_failed`, `unknown_size`, `provision_failed`...);
    `status_code` is what a REST spawn answers when the error comes early enough (within the
    hub's `slow_spawn_timeout`). The message is shown on the spawn page and in the REST answer.
    """

    def __init__(self, message: str, *, code: str, status_code: int = 400) -> None:
        # The reason becomes the HTTP reason phrase and a metrics label: keep it a plain token.
        reason = re.sub(r"[^A-Za-z0-9_.-]", "_", code)[:64] or "error"
        if _SpawnBase is web.HTTPError:
            # "%s" keeps a '%' in the message from being read as a format directive.
            super().__init__(status_code, "%s", message, reason=reason)
        else:
            super().__init__(message, reason=reason, status_code=status_code)
        self.code = code
        self.jupyterhub_message = message

    def __str__(self) -> str:
        return self.jupyterhub_message
