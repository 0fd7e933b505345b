"""Load generators on loopback: ``wrk`` when installed, else a small Python keep-alive one.

Both send ``GET path`` over keep-alive connections for a fixed time, rotating through a list of
session cookies (one per signed-in user) with ``Accept: application/json`` (so a request the
extension refuses is a 401, counted as an error, rather than a redirect), and report requests,
errors and the latency distribution as 100 percentile points. Several targets (gunicorn
instances standing in for hosts) share the connections equally and their results are merged.
"""

from __future__ import annotations

import http.client
import json
import math
import multiprocessing
import shutil
import subprocess
import threading
import time
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

HOST = "127.0.0.1"
MARK = "WRK_JSON "

_LUA = """
local cookies = {%(cookies)s}
local path = "%(path)s"
local counter = 0

function init(args)
  counter = math.random(1, #cookies)
end

function request()
  counter = counter %% #cookies + 1
  return wrk.format("GET", path, {["Cookie"] = cookies[counter], ["Accept"] = "application/json"})
end

function done(summary, latency, requests)
  local points = {}
  for i = 1, 100 do
    points[i] = string.format("%%d", latency:percentile(i))
  end
  local e = summary.errors
  io.write(string.format(
    '%(mark)s{"requests":%%d,"duration_us":%%d,"status":%%d,"connect":%%d,"read":%%d,' ..
    '"write":%%d,"timeout":%%d,"percentiles_us":[%%s]}\\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    table.concat(points, ",")))
end
"""


@dataclass
class LoadResult:
    """What one load run measured (merged over targets)."""

    requests: int
    errors: int
    duration: float
    #: Latency at percentiles 1..100, in seconds.
    percentiles: list[float] = field(default_factory=list)

    @property
    def rps(self) -> float:
        """Return requests per second."""
        return self.requests / self.duration if self.duration else 0.0

    def at(self, q: int) -> float:
        """Return the latency at percentile ``q`` (1-100), in seconds."""
        return self.percentiles[q - 1] if self.percentiles else math.nan


def merge(results: list[LoadResult]) -> LoadResult:
    """Merge runs made at the same time against different targets."""
    if len(results) == 1:
        return results[0]
    weighted: list[tuple[float, float]] = []
    for r in results:
        weighted += [(p, r.requests / 100) for p in r.percentiles]
    weighted.sort()
    total = sum(w for _, w in weighted)
    points: list[float] = []
    acc, i = 0.0, 0
    for q in range(1, 101):
        goal = total * q / 100
        while i < len(weighted) - 1 and acc + weighted[i][1] < goal:
            acc += weighted[i][1]
            i += 1
        points.append(weighted[i][0] if weighted else math.nan)
    duration = max(r.duration for r in results)
    return LoadResult(
        requests=sum(r.requests for r in results),
        errors=sum(r.errors for r in results),
        duration=duration,
        percentiles=points,
    )


def percentiles_of(latencies: list[float]) -> list[float]:
    """Return the 100 percentile points (nearest rank) of raw latencies."""
    if not latencies:
        return [math.nan] * 100
    ordered = sorted(latencies)
    n = len(ordered)
    return [ordered[min(n, max(1, math.ceil(q / 100 * n))) - 1] for q in range(1, 101)]


class LoadGenerator(Protocol):
    """Run load against one or more ports on loopback."""

    name: str

    def run(
        self, ports: list[int], path: str, cookies: list[str], connections: int, duration: float
    ) -> LoadResult:
        """Keep ``connections`` connections busy for ``duration`` seconds; return the result."""

    def close(self) -> None:
        """Release what the generator holds."""


def _split(connections: int, parts: int) -> list[int]:
    base, extra = divmod(connections, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


class Wrk:
    """Drive ``wrk`` (one process per target, threads split across them)."""

    name = "wrk"

    def __init__(self, binary: str, workdir: Path, threads: int = 2) -> None:
        self.binary = binary
        self.workdir = workdir
        self.threads = threads

    def _script(self, path: str, cookies: list[str]) -> Path:
        quoted = ", ".join(json.dumps(f"session={c}") for c in cookies)
        script = self.workdir / "wrk-load.lua"
        script.write_text(_LUA % {"cookies": quoted, "path": path, "mark": MARK})
        return script

    def run(
        self, ports: list[int], path: str, cookies: list[str], connections: int, duration: float
    ) -> LoadResult:
        """Run one wrk per port at the same time; merge their results."""
        script = self._script(path, cookies)
        shares = _split(connections, len(ports))
        threads = _split(max(self.threads, len(ports)), len(ports))
        procs = []
        try:
            for port, conns, thr in zip(ports, shares, threads, strict=True):
                cmd = [
                    self.binary,
                    f"-t{max(1, min(thr, conns))}",
                    f"-c{conns}",
                    f"-d{max(1, round(duration))}s",  # wrk takes whole seconds
                    "--timeout",
                    "10s",
                    "-s",
                    str(script),
                    f"http://{HOST}:{port}{path}",
                ]
                procs.append(
                    subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                )
            results = []
            for proc in procs:
                out, err = proc.communicate(timeout=duration + 30)
                results.append(self._parse(out, err))
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(5)
        return merge(results)

    @staticmethod
    def _parse(out: str, err: str) -> LoadResult:
        line = next((x for x in out.splitlines() if x.startswith(MARK)), None)
        if line is None:
            raise RuntimeError(f"wrk printed no result: {out[-500:]} {err[-500:]}")
        data = json.loads(line[len(MARK) :])
        errors = sum(data[k] for k in ("status", "connect", "read", "write", "timeout"))
        return LoadResult(
            requests=int(data["requests"]),
            errors=int(errors),
            duration=data["duration_us"] / 1e6,
            percentiles=[p / 1e6 for p in data["percentiles_us"]],
        )

    def close(self) -> None:
        """Nothing to release."""


def _python_worker(
    port: int, path: str, cookies: list[str], threads: int, start_at: float, duration: float
) -> dict[str, Any]:
    """Run in a child process: ``threads`` keep-alive connections until the end time."""
    end_at = start_at + duration
    results: list[tuple[int, int, list[float]]] = []
    lock = threading.Lock()

    def loop(offset: int) -> None:
        conn = http.client.HTTPConnection(HOST, port, timeout=10)
        count = errors = 0
        latencies: list[float] = []
        i = offset
        time.sleep(max(0.0, start_at - time.time()))
        while time.time() < end_at:
            i += 1
            headers = {
                "Cookie": f"session={cookies[i % len(cookies)]}",
                "Accept": "application/json",
            }
            started = time.perf_counter()
            try:
                conn.request("GET", path, headers=headers)
                answer = conn.getresponse()
                answer.read()
                if answer.status != 200:
                    errors += 1
                if answer.will_close:
                    conn.close()
            except (OSError, http.client.HTTPException):
                errors += 1
                conn.close()
            latencies.append(time.perf_counter() - started)
            count += 1
        conn.close()
        with lock:
            results.append((count, errors, latencies))

    workers = [threading.Thread(target=loop, args=(n * 7,)) for n in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(duration + 30)
    latencies = [x for _, _, lat in results for x in lat]
    return {
        "requests": sum(c for c, _, _ in results),
        "errors": sum(e for _, e, _ in results),
        "latencies": latencies,
    }


class PythonLoad:
    """A keep-alive load generator in Python: a few processes, each with several threads."""

    name = "python (http.client)"

    def __init__(self, processes: int = 2) -> None:
        self.processes = processes
        context = multiprocessing.get_context("spawn")
        self.pool: Executor = ProcessPoolExecutor(max_workers=processes, mp_context=context)

    def run(
        self, ports: list[int], path: str, cookies: list[str], connections: int, duration: float
    ) -> LoadResult:
        """Spread the connections over the processes (and the ports); merge the results."""
        procs = max(1, min(self.processes, connections))
        per_proc = _split(connections, procs)
        start_at = time.time() + 0.5
        futures = [
            self.pool.submit(
                _python_worker, ports[n % len(ports)], path, cookies, threads, start_at, duration
            )
            for n, threads in enumerate(per_proc)
            if threads
        ]
        outs = [f.result(timeout=duration + 60) for f in futures]
        latencies = [x for out in outs for x in out["latencies"]]
        return LoadResult(
            requests=sum(o["requests"] for o in outs),
            errors=sum(o["errors"] for o in outs),
            duration=duration,
            percentiles=percentiles_of(latencies),
        )

    def close(self) -> None:
        """Stop the worker processes."""
        self.pool.shutdown(wait=True, cancel_futures=True)


def make_loadgen(workdir: Path, prefer: str = "auto") -> LoadGenerator:
    """Return wrk when installed (unless ``prefer`` is ``python``), else the Python one."""
    binary = shutil.which("wrk")
    if prefer != "python" and binary:
        return Wrk(binary, workdir)
    return PythonLoad()
