"""Runs cells in a real IPython kernel (ipykernel, from the venv) with a given environment.

Used by magic.test.ts: reads {"env": {...}, "cwd": "...", "cells": ["..."]} on stdin, starts the
kernel with exactly that environment (a single-user server's, so the kernel holds the server's
token and NGSCI_API_URL, as kernels the server starts do), and prints one JSON line per cell:
{"stdout", "stderr", "text", "html", "error"}.
"""

import json
import sys

from jupyter_client.manager import KernelManager

job = json.load(sys.stdin)
km = KernelManager(kernel_name="python3")
km.start_kernel(env=job["env"], cwd=job["cwd"])
kc = km.client()
kc.start_channels()
try:
    kc.wait_for_ready(timeout=60)
    for code in job["cells"]:
        out = {"stdout": "", "stderr": "", "text": "", "html": "", "error": None}

        def collect(msg, out=out):
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                out[content["name"]] += content["text"]
            elif kind in ("execute_result", "display_data"):
                out["text"] += content["data"].get("text/plain", "")
                out["html"] += content["data"].get("text/html", "")
            elif kind == "error":
                out["error"] = f"{content['ename']}: {content['evalue']}"

        kc.execute_interactive(code, timeout=120, output_hook=collect)
        print(json.dumps(out), flush=True)
finally:
    kc.stop_channels()
    km.shutdown_kernel(now=True)
