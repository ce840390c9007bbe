"""ngsci's JupyterHub Spawner: servers run on machines that the ngsci hub-service provisions.

Use `configure_hub(c, ...)` in `jupyterhub_config.py`; see the package README for every setting.
"""

from .client import BridgeClient, ServiceError
from .errors import SpawnError
from .hubconfig import configure_hub
from .options import options_from_form, validate_options
from .spawner import NgsciSpawner

__version__ = "0.1.0"

__all__ = [
    "BridgeClient",
    "NgsciSpawner",
    "ServiceError",
    "SpawnError",
    "__version__",
    "configure_hub",
    "options_from_form",
    "validate_options",
]
