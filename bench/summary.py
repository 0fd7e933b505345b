"""Targets met or missed, and the summary page and plot written to docs/benchmarks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import (
    cookie_size,
    crowd,
    hot_path,
    memory,
    peer,
    redis_deployments,
    scale_out,
    sdk_adapters,
    stampede,
    warm_cache,
)
from bench.common import DOCS, ROOT, fmt_ms, markdown_table

__all__ = ["ROOT", "Verdict", "targets", "targets_text", "write_docs"]

#: requests/s decorated / signed-in under gunicorn.
RATIO_TARGET = 0.95


@dataclass
class Verdict:
    """One target and what this run measured."""

    what: str
    target: str
    measured: str
    met: bool
    why: str = ""


def at_most(
    what: str, target: str, measured: str, value: float, limit: float, why_missed: str
) -> Verdict:
    """A target met when ``value`` is at most ``limit``; ``why_missed`` is said when it is not."""
    met = value <= limit
    return Verdict(what, target, measured, met, "" if met else why_missed)


def targets(results: dict[str, Any]) -> list[Verdict]:
    """Compare this run's figures with the issue's targets."""
    out: list[Verdict] = []
    warm = results["warm_cache"]
    hot = results["hot_path"]
    for name, row in warm.items():
        out.append(
            at_most(
                f"(a) test-client time decorated / signed-in, {name} cache "
                f"(decorated / bare: {row['ratio_bare']:.2f})",
                f"<= {warm_cache.RATIO_TARGET}",
                f"{row['ratio']:.2f} (+{row['overhead_us']:.0f} µs)",
                row["ratio"],
                warm_cache.RATIO_TARGET,
                f"missed by {row['ratio'] - warm_cache.RATIO_TARGET:.2f}: the extension's "
                f"own warm work is {hot[name]['own_us']:.0f} µs (part f) on a signed-in request "
                f"of {row['signed_in_us']:.0f} µs, and single rounds on this shared machine "
                f"range from {min(row['ratios']):.2f} to {max(row['ratios']):.2f}",
            )
        )
    per_request = warm["redis"]["redis_commands_per_request"]
    trips = sum(per_request.values())
    out.append(
        Verdict(
            "(a) Redis round trips on a warm hit (the near cache answers)",
            "<= 1",
            f"{trips:g} ({', '.join(sorted(per_request)) or 'none'})",
            trips <= 1.0,
        )
    )
    for name, row in hot.items():
        out.append(
            at_most(
                f"(f) the extension's own warm work per request, {name} cache",
                f"<= {hot_path.TARGET_US:g} µs",
                f"{row['own_us']:.1f} µs",
                row["own_us"],
                hot_path.TARGET_US,
                f"missed by {row['own_us'] - hot_path.TARGET_US:.1f} µs; single rounds range "
                f"from {min(row['own_rounds_us']):.1f} to {max(row['own_rounds_us']):.1f} µs on "
                "this shared machine. What is left per request: reading and checking the session "
                "record (once fully per process, then its lifetimes), the back-channel logout "
                "check, the near-cache read, and the view's own call answered from the request's "
                "memo",
            )
        )
    for name, row in results["sdk_adapters"].items():
        out.append(
            Verdict(
                f"(g) a warm call through the {name} adapter, against the bare token path",
                f"adds <= {sdk_adapters.TARGET_US:g} µs",
                f"{row['added_us']:+.2f} µs ({row['bare_us']:.2f} -> {row['adapter_us']:.2f})",
                row["added_us"] <= sdk_adapters.TARGET_US,
            )
        )
    for name, runs in results["stampede"].items():
        counts = [r["exchanges"] for r in runs]
        errors = sum(r["errors"] for r in runs)
        out.append(
            Verdict(
                f"(b) exchanges per stampede, {name} cache, N = "
                + ", ".join(str(r["n"]) for r in runs),
                "1 each, no errors",
                ", ".join(map(str, counts)) + f"; {errors} errors",
                all(c == 1 for c in counts) and errors == 0,
            )
        )
    deployments = [r for by_name in results["redis_deployments"].values() for r in by_name.values()]
    out.append(
        Verdict(
            f"(i) exchanges per user, cold stampedes of {redis_deployments.BURST} on one Redis "
            "node (TCP, TLS) and a 3-master cluster",
            "1 each, no errors",
            ", ".join(f"{r['exchanges_per_user']:.2f}" for r in deployments)
            + f"; {sum(r['errors'] for r in deployments)} errors",
            all(r["exchanges_max"] == 1 for r in deployments)
            and not any(r["errors"] for r in deployments),
        )
    )
    scale = results["scale_out"]
    for row in (scale["throughput"][-2], scale["throughput"][-1]):
        ratio = row["ratio"]
        cpu = scale_out.cpu_ratio(row)
        why = ""
        if ratio < RATIO_TARGET:
            why = (
                f"missed by {RATIO_TARGET - ratio:.3f}: rounds of 2 s on a shared 2-core machine "
                "(ratios of single rounds: "
                + ", ".join(f"{r:.2f}" for r in row["ratios"])
                + ")"
                + (f"; by worker CPU per request the ratio is {cpu:.2f}" if cpu else "")
            )
        out.append(
            Verdict(
                f"(c) requests/s decorated / signed-in, {row['setup']}, {row['connections']} conns "
                f"(decorated / bare: {row['ratio_bare']:.2f})",
                f">= {RATIO_TARGET}",
                f"{ratio:.3f} ({row['decorated_rps']:.0f} / {row['signed_in_rps']:.0f})"
                + (f"; by worker CPU {cpu:.2f}" if cpu else ""),
                ratio >= RATIO_TARGET,
                why,
            )
        )
    cold = scale["cold"]
    race = (
        "a waiter in another process read the cache just before the lock holder stored its "
        "token, then saw the lock released and exchanged itself instead of reading again "
        "(TokenCache._across_processes)"
    )
    out.append(
        Verdict(
            f"(c) exchanges per user, cold start on {cold['processes']} processes (2 hosts)",
            "1",
            f"{cold['exchanges'] / cold['users']:.2f} (max {cold['per_user_max']})",
            cold["per_user_max"] == 1 and cold["per_user_min"] == 1,
            "" if cold["per_user_max"] == 1 else race,
        )
    )
    life = scale["lifetime"]
    ok = life["per_user_min"] == life["per_user_max"] == life["lifetimes"]
    out.append(
        Verdict(
            f"(c) exchanges per user per token lifetime ({life['lifetimes']} lifetimes)",
            "1",
            f"{life['per_user_per_lifetime']:.2f} (per user {life['per_user_min']}-"
            f"{life['per_user_max']} for {life['lifetimes']})",
            ok,
            "" if ok else race,
        )
    )
    errors = (
        sum(r["errors"] for r in scale["throughput"])
        + cold["errors"]
        + life["errors"]
        + scale["stampede"]["errors"]
    )
    out.append(Verdict("(c) errors under load", "0", str(errors), errors == 0))
    cookie = results["cookie_size"]["rows"][-1]
    out.append(
        Verdict(
            f"(d) session cookie with {cookie['accounts']} connected accounts",
            f"< {cookie_size.TARGET} B",
            f"{cookie['value_bytes']} B",
            cookie["value_bytes"] < cookie_size.TARGET,
        )
    )
    ours, theirs = results["peer"]["ours"]["cached"], results["peer"]["peer"]["cached"]
    out.append(
        Verdict(
            f"(e) exchanges per {ours['calls']} calls (peer: auth0-server-python)",
            "1",
            f"{ours['exchanges']} (peer {theirs['exchanges']})",
            ours["exchanges"] == 1,
        )
    )
    mem = results["memory"]
    out.append(
        Verdict(
            f"(g) RSS growth of one process after {mem['users']} distinct users",
            f"< {mem['target_mb']:g} MB",
            f"{mem['growth_mb']:.1f} MB ({mem['before_mb']:.0f} -> {mem['after_mb']:.0f} MB)",
            mem["growth_mb"] < mem["target_mb"],
        )
    )
    many = results["crowd"]
    out.append(
        Verdict(
            f"(h) {many['users']} users cold-starting on one instance (Redis): exchanges per "
            f"user, errors (p50 {many['p50_s'] * 1000:.0f} ms, p99 {many['p99_s'] * 1000:.0f} ms)",
            "exactly 1, 0 errors",
            f"{many['per_user_min']}-{many['per_user_max']}, {many['errors']} errors",
            many["per_user_min"] == many["per_user_max"] == 1 and many["errors"] == 0,
        )
    )
    plugin = results.get("plugin_import")
    if plugin:
        out.append(
            Verdict(
                "(e) pytest plugin import where its fixtures are not used",
                f"< {plugin['target_ms']:g} ms",
                f"{plugin['plugin_ms']:.2f} ms (the extension itself: "
                f"{plugin['extension_ms']:.0f} ms)",
                plugin["plugin_ms"] < plugin["target_ms"],
            )
        )
    return out


def targets_text(verdicts: list[Verdict]) -> str:
    """Return the targets as printed lines."""
    lines = []
    for v in verdicts:
        mark = "met   " if v.met else "MISSED"
        lines.append(f"  {mark} {v.what}: {v.measured} (target {v.target})")
        if v.why:
            lines.append(f"         why: {v.why}")
    return "\n".join(lines)


def _plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, FuncFormatter, LogFormatter, NullLocator

    def axes(ax: Any, xs: list[int]) -> None:
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.xaxis.set_major_locator(FixedLocator(xs))
        ax.xaxis.set_minor_locator(NullLocator())
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        ax.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(1, 0.4)))
        ax.grid(True, which="major", linewidth=0.3)

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    colors = {"in-process": "tab:blue", "redis": "tab:red", "signed_in": "tab:grey"}
    colors["decorated"] = "tab:green"
    for name, runs in results["stampede"].items():
        xs = [r["n"] for r in runs]
        color = colors.get(name)
        left.plot(xs, [r["p50_s"] * 1000 for r in runs], "o-", color=color, label=f"{name} p50")
        left.plot(xs, [r["p99_s"] * 1000 for r in runs], "o--", color=color, label=f"{name} p99")
    left.axhline(
        stampede.AUTH0_DELAY * 1000,
        color="black",
        linewidth=0.8,
        linestyle=":",
        label="one Auth0 exchange",
    )
    axes(left, xs)
    left.set_xlabel("simultaneous requests, cold cache (one exchange)")
    left.set_ylabel("latency (ms)")
    left.set_title("(b) stampede, one process")
    left.legend(fontsize=8)

    rows = [r for r in results["scale_out"]["throughput"] if r["setup"].startswith("1 ")]
    xs = [r["connections"] for r in rows]
    for route in ("signed_in", "decorated"):
        color = colors[route]
        p50 = [r[f"{route}_p50_s"] * 1000 for r in rows]
        p99 = [r[f"{route}_p99_s"] * 1000 for r in rows]
        label = "/" + route.replace("_", "-")
        right.plot(xs, p50, "o-", color=color, label=f"{label} p50")
        right.plot(xs, p99, "o--", color=color, label=f"{label} p99")
    axes(right, xs)
    right.set_xlabel("concurrent connections (keep-alive)")
    right.set_ylabel("latency (ms)")
    right.set_title(f"(c) gunicorn, {scale_out.WORKERS} workers, warm Redis cache")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _section_warm(results: dict[str, Any]) -> str:
    return markdown_table(warm_cache.HEADERS, warm_cache.rows(results))


def _section_hot(results: dict[str, Any]) -> str:
    return markdown_table(
        ["cache", "signed-in view µs", "decorated view µs", "extension µs"], hot_path.rows(results)
    )


def _section_stampede(results: dict[str, Any]) -> str:
    pool = any(
        "MaxConnectionsError" in text
        for runs in results.values()
        for r in runs
        for text in r["warning_texts"]
    )
    note = (
        "\n\nThe warnings are redis-py's connection pool running out: it holds at most 100 "
        "connections per process and fails a read beyond that, which the extension treats as a "
        "cache outage (the in-process single flight still keeps the exchanges to one). Keep "
        "workers' threads well under 100 per process."
        if pool
        else ""
    )
    return markdown_table(stampede.HEADERS, stampede.rows(results)) + note


def _section_scale(results: dict[str, Any]) -> str:
    table = markdown_table(scale_out.THROUGHPUT_HEADERS, scale_out.throughput_rows(results))
    cold, stamp, life = results["cold"], results["stampede"], results["lifetime"]
    facts = [
        f"- Cold start, {cold['users']} users on {cold['processes']} processes of 2 instances: "
        f"{cold['exchanges']} exchanges ({cold['exchanges'] / cold['users']:.2f} per user, "
        f"max {cold['per_user_max']}), {cold['errors']} errors in {cold['requests']} requests.",
        f"- Cross-host stampede, {stamp['connections']} connections for one signed-in user on a "
        f"cold cache: {stamp['exchanges']} exchange(s), {stamp['errors']} errors, p50 "
        f"{fmt_ms(stamp['p50_s'])} ms, p99 {fmt_ms(stamp['p99_s'])} ms.",
        f"- Token lifetime {life['token_lifetime_s']} s (cached {life['cached_for_s']} s), "
        f"{life['seconds']:g} s of steady load on both instances = {life['lifetimes']} "
        f"lifetimes: {life['exchanges']} exchanges for {scale_out.USERS} users, "
        f"{life['per_user_per_lifetime']:.2f} per user per lifetime, {life['errors']} errors.",
    ]
    return table + "\n\n" + "\n".join(facts)


def _section_cookie(results: dict[str, Any]) -> str:
    rows = [[r["accounts"], r["value_bytes"], r["header_bytes"]] for r in results["rows"]]
    return (
        markdown_table(["connected accounts", "cookie value (B)", "Set-Cookie header (B)"], rows)
        + f"\n\nAccounts in the vault afterwards: {', '.join(results['connected'])}; fetching "
        f"one token for each took {results['exchanges_after']} exchanges."
    )


def _section_peer(results: dict[str, Any]) -> str:
    ours, theirs = results["ours"], results["peer"]
    rows = peer.rows(results)
    return (
        markdown_table(
            [
                "library",
                f"exchanges / {peer.CALLS} calls",
                "TCP connections to Auth0",
                "median µs / call",
                "mean µs / call",
            ],
            rows,
        )
        + f"\n\n{peer.CONCURRENT} calls at once on a cold cache: Flask-Token-Vault "
        f"{ours['burst_exchanges']} exchange, auth0-server-python {theirs['burst_exchanges']}."
    )


def _peer_notes(results: dict[str, Any]) -> str:
    """Explain the peer's figures from its source (1.0.0b20), only when the figures show it."""
    theirs = results["peer"]
    notes = []
    if theirs["cached"]["exchanges"] >= theirs["cached"]["calls"]:
        notes.append(
            "it keeps the connection token in the session, but writes its expiry as "
            "`now + expires_in` from a dict that carries `expires_at` instead, so the token "
            "counts as expired as soon as it is stored and every call exchanges again"
        )
    if theirs["burst_exchanges"] > 1:
        notes.append("nothing keeps two calls for the same token from exchanging at once")
    if theirs["cached"]["connections"] >= theirs["cached"]["exchanges"] > 1:
        notes.append("each exchange opens a new `httpx.AsyncClient`, hence a new connection")
    if not notes:
        return ""
    return (
        f"\n\nWhat the source of auth0-server-python {theirs['version']} shows behind these "
        "figures: " + "; ".join(notes) + "."
    )


def write_docs(
    results: dict[str, Any], meta: dict[str, Any], verdicts: list[Verdict]
) -> tuple[Path, Path]:
    """Write ``docs/benchmarks/index.md`` and ``latency.png``; return their paths."""
    DOCS.mkdir(parents=True, exist_ok=True)
    plot = DOCS / "latency.png"
    _plot(results, plot)
    verdict_rows = [
        [v.what, v.target, v.measured, "met" if v.met else "**missed**"] for v in verdicts
    ]
    misses = "\n".join(f"- {v.what}: {v.why}" for v in verdicts if v.why)
    load = results["scale_out"]["loadgen"]
    text = f"""---
orphan: true
---

# Benchmarks

`make bench` runs these and rewrites this page. The last run: {meta["date"]}, {meta["cpus"]} CPUs,
Python {meta["python"]}, {meta["platform"]}, {meta["total_seconds"]:.0f} s in all.

These machines are small and shared, so every figure that matters is a **ratio or a count
measured side by side in the same run**: the routes alternate in interleaved rounds, and the
exchanges are counted by the Auth0 emulator itself. Absolute times are shown for scale only.

Three routes serve the same JSON answer: `/bare` reads no session (hello world);
`/signed-in` is the baseline every signed-in app pays, a minimal check that reads the same
session (the Flask-Login pattern); `/decorated` is behind `provider_token_required` and calls
`get_provider_token` once more in the view. The targets compare decorated with signed-in;
decorated / bare is printed for honesty.

## Targets

{markdown_table(["what", "target", "measured", ""], verdict_rows)}

{("Why the misses:" + chr(10) + chr(10) + misses) if misses else "Every target was met."}

![Latency against concurrency: the stampede (left) and gunicorn under load (right)](latency.png)

## (a) Warm-cache cost

The three routes through Flask's test client on a warm cache (median of {warm_cache.ROUNDS}
interleaved rounds of {warm_cache.PER_ROUND} requests each). The Redis server's own command
counters give the round trips per request: the near cache answers, so there are none.

{_section_warm(results["warm_cache"])}

## (f) The extension's own work per request

A micro-benchmark of the decorator's path: each call in a fresh request context whose session
is already loaded from the cookie (so only the extension's work differs), the signed-in view
and the decorated view interleaved in {hot_path.ROUNDS} rounds of {hot_path.PER_ROUND} calls.
On a warm cache the extension reads its session record without decrypting the refresh token
(that happens only when an exchange is needed), finds the token in the near cache under a key
it does not hash, and keeps it for the view's own call.

{_section_hot(results["hot_path"])}

## (g) Memory

{memory.report(results["memory"])}. The near cache keeps at most
`TOKEN_VAULT_LOCAL_CACHE_MAX_USERS` users (10,000 by default) and drops the oldest beyond that.

## (h) Many users at once

{crowd.report(results["crowd"]).split(chr(10), 1)[0].removeprefix("(h) ")}:

```
{crowd.report(results["crowd"]).split(chr(10), 1)[1]}
```

## (b) Stampede on a cold cache

N requests at once (threads of one process, each with its own client) for the same user and
connection, on a cold cache; the emulator answers each exchange after
{stampede.AUTH0_DELAY * 1000:.0f} ms, like a real Auth0 round trip, so that the others arrive
while the first exchange is in flight. Target: exactly one exchange whatever N.

{_section_stampede(results["stampede"])}

## (c) Scale-out: gunicorn, {scale_out.WORKERS} workers, 1 and 2 instances on one Redis

The tested deployment example (`deploy/gunicorn.conf.py`, `deploy/wsgi.py`, below) runs as
{scale_out.INSTANCES} gunicorn instances on two ports (standing in for two hosts), each with
{scale_out.WORKERS} gthread workers of {scale_out.THREADS} threads, sharing one Redis cache and
one emulator. {scale_out.USERS} users are signed in with `login_as` on an app with the same
`SECRET_KEY`; the load generator ({load}, keep-alive, loopback only) rotates through their
cookies. Each row is the median of {scale_out.PAIRS} pairs of adjacent
{scale_out.ROUND_SECONDS:g} s rounds. Requests/s on a shared 2-core machine move with whatever
else runs on it, so the workers' CPU time per request (read from `/proc`) is shown beside them
as a second estimate: its ratio is what requests/s would be for CPU-bound workers.

{_section_scale(results["scale_out"])}

## (d) Session cookie size

Signed in through the real `/auth/connect/<connection>` and `/auth/callback` routes with the
emulator's auto-login, connecting one account after another (`google-oauth2`, `windowslive`
and three more Token Vault connections added to the emulator's tenant). Browsers cap a cookie
at 4096 bytes. The cookie holds the user's claims and one encrypted Auth0 refresh token,
whatever the number of accounts: the provider tokens stay in the vault.

{_section_cookie(results["cookie_size"])}

## (e) Against Auth0's server SDK

The same job, a provider access token for one signed-in user, done {peer.CALLS} times in a row
by `get_provider_token` (a new request each time) and by auth0-server-python's
`ServerClient.get_access_token_for_connection` (its session kept in memory), against the same
emulator, served here with HTTP keep-alive as Auth0 does. The SDK is used as shipped except
for one patch: its `_normalize_url` forces `https://` on every domain, and the emulator serves
plain http on loopback.

{_section_peer(results["peer"])}{_peer_notes(results["peer"])}

## Tested deployment example

The scale-out benchmark runs these files unchanged; copy them next to your app
(`deploy/README.md` explains each setting).

```{{literalinclude}} ../../deploy/gunicorn.conf.py
:language: python
:caption: deploy/gunicorn.conf.py
```

```{{literalinclude}} ../../deploy/wsgi.py
:language: python
:caption: deploy/wsgi.py
```

```{{literalinclude}} ../../deploy/env.example
:language: bash
:caption: deploy/env.example
```
"""
    page = DOCS / "index.md"
    page.write_text(text)
    return page, plot
