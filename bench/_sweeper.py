"""A sweeping child process: runs `poll_jobs` sweeps on command and reports each one's client CPU.

Run by `_tenants` as a script, with this checkout's interpreter or the 2ff99dd baseline's; it
uses only what both versions have (``VBOClient``, ``PollTarget``, ``poll_jobs`` with ``follow``),
and ``health``/``batch`` only when a command asks for them. Its first line of output names the
``vbo_async`` it imported; then it reads one JSON command per line on stdin and answers each with
one JSON line on stdout::

    {"servers": [url, ...], "organizations": [[id, ...], ...], "api_version": "v8",
     "follow": ["repository", "proxy"], "health": true, "batch": null}

A sweep is timed from building its clients (one per server, a TLS context shared by all of them,
built once: ``verify=True`` would load the system's CA certificates for every client) to closing
them, with ``time.perf_counter()`` and ``time.process_time()`` of this process: only the client's
work, since the servers have processes of their own. A full collection runs before each sweep.
"""

from __future__ import annotations

import asyncio
import gc
import json
import ssl
import sys
import time
from typing import Any


async def sweep(command: dict[str, Any], context: ssl.SSLContext) -> dict[str, Any]:
    from vbo_async import PollTarget, VBOClient, poll_jobs

    options: dict[str, Any] = {}
    if command.get("health"):
        from vbo_async import HealthPolicy  # type: ignore[attr-defined,unused-ignore]

        options["health"] = HealthPolicy()
    if "batch" in command:
        options["batch"] = command["batch"]
    started, started_cpu = time.perf_counter(), time.process_time()
    clients = [
        VBOClient(url, username="admin", password="admin", api_version=command["api_version"], verify=context)
        for url in command["servers"]
    ]
    tenants = jobs = judged = failed = link_errors = 0
    first_error = ""
    try:
        targets = [
            PollTarget(client=client, organization_id=org_id)
            for client, org_ids in zip(clients, command["organizations"], strict=True)
            for org_id in org_ids
        ]
        async for result in poll_jobs(targets, follow=tuple(command["follow"]), **options):
            tenants += 1
            if result.error is not None:
                failed += 1
                first_error = first_error or f"{result.target.organization_id}: {result.error!r}"
            # A link the resource does not have (a v8 repository in a proxy pool has no proxy
            # link) is the tenant's link error, not a failure.
            link_errors += len(result.link_errors)
            jobs += len(result.jobs)
            judged += len(getattr(result, "health", None) or {})
    finally:
        for client in clients:
            await client.aclose()
    return {
        "wall": time.perf_counter() - started,
        "cpu": time.process_time() - started_cpu,
        "tenants": tenants,
        "jobs": jobs,
        "judged": judged,
        "failed": failed,
        "link_errors": link_errors,
        "error": first_error,
        "requests": sum(getattr(client, "requests_sent", 0) for client in clients),
    }


def main() -> None:
    import vbo_async

    context = ssl.create_default_context()
    print(json.dumps({"package": vbo_async.__file__}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        gc.collect()
        print(json.dumps(asyncio.run(sweep(command, context))), flush=True)


if __name__ == "__main__":
    main()
