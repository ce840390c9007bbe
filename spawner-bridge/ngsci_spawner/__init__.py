"""ngsci's JupyterHub Spawner: servers run on machines that the ngsci hub-service provisions.

Use `configure_hub(c, ...)` in `jupyterhub_config.py`; see the package README for every setting.

Names are imported lazily, so importing one piece does not pull in all of JupyterHub (about
0.7 s). The `%ngsci` magic that kernels load is a package of its own (magic/, `ngsci_magic`):
nothing here runs in a kernel.
"""

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "BridgeClient": ".client",
    "ServiceError": ".client",
    "SpawnError": ".errors",
    "configure_hub": ".hubconfig",
    "options_from_form": ".options",
    "validate_options": ".options",
    "NgsciSpawner": ".spawner",
}

__all__ = [*sorted(_EXPORTS), "__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value
