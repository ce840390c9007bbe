"""One scan of jupyterhub-idle-culler against a hub URL, timed; prints JSON.

The culler's own loop (`IdleCuller.start`) runs `cull_idle` every `cull_every` seconds; this calls
the same coroutine once per repetition, with the settings a z2jh deployment uses (timeout 3600,
concurrency 10, no user culling), so nothing is culled and the time is the scan itself.
"""

import asyncio
import json
import logging
import sys
import time

from jupyterhub_idle_culler import cull_idle


async def main(url: str, reps: int) -> None:
    logger = logging.getLogger("idle-culler-bench")
    logger.setLevel(logging.WARNING)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        await cull_idle(url=url, api_token="bench-token", inactive_limit=3600, logger=logger, concurrency=10)
        times.append((time.perf_counter() - t0) * 1000)
    print(json.dumps({"ms": times}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
