"""A simulator on a loopback uvicorn server in a child process, with a request counter to read and reset.

Run as a script by `serve` (never imported by the child): it binds 127.0.0.1 on an ephemeral port,
prints the port on its first line of output and serves until terminated. The server has its own
process, so its event loop and the benchmark's client loop never share a thread (or the GIL).
``GET /_bench/stats`` answers the simulator's request count (in all and per endpoint) and the
server process's CPU seconds so far; ``POST /_bench/reset`` zeroes the counts; neither is counted.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from starlette.types import Receive, Scope, Send

__all__ = ["KINDS", "Server", "ServerConfig", "kind_of", "serve"]

KINDS = ("token", "organizations", "jobs", "sessions", "links", "logout", "other")
"""What `kind_of` files a request under, in the order tables show them."""


def kind_of(method: str, path: str) -> str:
    """What a request to the simulator was for (one of `KINDS`), from its method and path:
    token grants, organization listings or lookups, job listings (server-wide or one tenant's),
    session listings, the repositories and proxies jobs link to, logouts."""
    parts = path.lower().strip("/").split("/")[1:]  # without the /vN
    if method == "POST" and parts[:1] == ["token"]:
        return "logout" if parts[1:] == ["logout"] else "token"
    if method != "GET" or not parts:
        return "other"
    if "jobsessions" in parts:
        return "sessions"
    if parts[-1] == "jobs" or (parts[0] == "jobs" and len(parts) <= 2):
        return "jobs"
    if parts[0] == "organizations":
        return "organizations"
    if parts[0] in ("backuprepositories", "proxies"):
        return "links"
    return "other"


@dataclass(frozen=True)
class ServerConfig:
    """What the served simulator holds."""

    organizations: int
    jobs_per_organization: tuple[int, int] = (2, 5)
    repositories: int = 20
    proxies: int = 4
    seed: int = 11
    api_versions: tuple[str, ...] = ("v1", "v6", "v7", "v8")
    """The API versions served (the others answer 404)."""

    def args(self) -> list[str]:
        low, high = self.jobs_per_organization
        return [
            f"--organizations={self.organizations}",
            f"--jobs={low},{high}",
            f"--repositories={self.repositories}",
            f"--proxies={self.proxies}",
            f"--seed={self.seed}",
            f"--api-versions={','.join(self.api_versions)}",
        ]


@dataclass(frozen=True)
class Server:
    """A running loopback simulator."""

    port: int
    organization_ids: list[str]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        httpx.post(f"{self.base_url}/_bench/reset").raise_for_status()

    def requests(self) -> int:
        """Requests the simulator has seen since the last `reset`."""
        return int(self._stats()["requests"])

    def by_endpoint(self) -> dict[tuple[str, str], int]:
        """Requests since the last `reset` per ``(method, lower-cased path)``, as the simulator
        counts them (`SimulatorStats.by_endpoint`)."""
        return {(method, path): count for method, path, count in self._stats()["by_endpoint"]}

    def cpu(self) -> float:
        """CPU seconds the server process has used so far (its own ``time.process_time()``)."""
        return float(self._stats()["cpu"])

    def _stats(self) -> dict[str, Any]:
        response = httpx.get(f"{self.base_url}/_bench/stats")
        response.raise_for_status()
        stats: dict[str, Any] = response.json()
        return stats


@contextlib.contextmanager
def serve(config: ServerConfig) -> Iterator[Server]:
    """Start the child process, yield the `Server`, and stop the child however the block ends."""
    child = subprocess.Popen(
        [sys.executable, __file__, *config.args()], stdout=subprocess.PIPE, text=True, bufsize=1
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        if not line.strip().isdigit():
            raise RuntimeError(f"the simulator server did not start (said {line!r})")
        base = f"http://127.0.0.1:{int(line)}"
        ids = httpx.get(f"{base}/_bench/organizations").json()
        yield Server(port=int(line), organization_ids=ids)
    finally:
        child.terminate()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _main() -> None:
    import uvicorn

    from vbo_async.simulator import SimulatorConfig, create_app

    parser = argparse.ArgumentParser()
    parser.add_argument("--organizations", type=int, required=True)
    parser.add_argument("--jobs", required=True)
    parser.add_argument("--repositories", type=int, required=True)
    parser.add_argument("--proxies", type=int, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--api-versions", required=True)
    args = parser.parse_args()
    low, high = (int(part) for part in args.jobs.split(","))
    app = create_app(
        SimulatorConfig(
            seed=args.seed,
            organizations=args.organizations,
            jobs_per_organization=(low, high),
            repositories=args.repositories,
            proxies=args.proxies,
            api_versions=tuple(args.api_versions.split(",")),
        )
    )
    simulator = app.state.simulator

    async def control(scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or not path.startswith("/_bench/"):
            await app(scope, receive, send)
            return
        if path == "/_bench/reset":
            simulator.reset_stats()
            body = b"{}"
        elif path == "/_bench/organizations":
            body = orjson.dumps(simulator.organization_ids())
        else:
            stats = simulator.stats
            by_endpoint = [[method, path, count] for (method, path), count in stats.by_endpoint.items()]
            cpu = time.process_time()
            body = orjson.dumps({"requests": stats.requests, "by_endpoint": by_endpoint, "cpu": cpu})
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted connections only when the listening
    # socket's proto says TCP. Without it uvicorn's two writes per answer (head, then body) meet
    # Nagle's algorithm and the client's delayed ACK: about 40 ms per request on loopback.
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(2048)
    # Keep-alive well beyond uvicorn's 5 s: a pooled connection the server closes just as a client
    # reuses it ends the raw sweep, which retries nothing (seen once when the machine stalled).
    config = uvicorn.Config(
        control,
        log_level="warning",
        access_log=False,
        lifespan="off",
        ws="none",
        http="h11",
        loop="asyncio",
        timeout_keep_alive=120,
    )
    print(listener.getsockname()[1], flush=True)
    uvicorn.Server(config).run(sockets=[listener])


if __name__ == "__main__":
    _main()
