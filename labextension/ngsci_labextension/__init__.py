"""The ngsci JupyterLab extension, shipped prebuilt: this package only tells Jupyter where it is."""

import json
from pathlib import Path

HERE = Path(__file__).parent.resolve()

try:
    __version__ = json.loads((HERE / "labextension" / "package.json").read_text())["version"]
except FileNotFoundError:  # a source checkout before `npm run build`
    __version__ = "0.0.0"


def _jupyter_labextension_paths():
    return [{"src": "labextension", "dest": "ngsci-labextension"}]
