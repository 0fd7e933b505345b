"""Warm-cache cost of a decorated route against the same route undecorated.

Prints microseconds per request and the ratio, measured side by side in one run (rounds of each
interleaved, best-of-rounds reported), for the in-process cache and for a Redis cache.
Run: ``.venv/bin/python -m bench.warm_cache``.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Flask, jsonify

from flask_token_vault import TokenVault, get_provider_token, provider_token_required
from flask_token_vault.emulator import Emulator
from flask_token_vault.testing import login_as
from tests.redis_server import RedisServer

CAL_READ = "https://www.googleapis.com/auth/calendar.readonly"
ROUNDS = 15
PER_ROUND = 300


def make_app(emu: Emulator, **config: Any) -> Flask:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="bench-secret-key-0123456789abcdef",
        AUTH0_DOMAIN=emu.url,
        AUTH0_CLIENT_ID=emu.client_id,
        AUTH0_CLIENT_SECRET=emu.client_secret,
        TOKEN_VAULT_CONNECTIONS=["google-oauth2"],
        **config,
    )
    TokenVault(app)

    @app.get("/bare")
    def bare() -> Any:
        return jsonify(ok=True)

    @app.get("/decorated")
    @provider_token_required("google-oauth2", scopes=[CAL_READ])
    def decorated() -> Any:
        get_provider_token("google-oauth2")
        return jsonify(ok=True)

    return app


def measure(app: Flask, emu: Emulator) -> tuple[float, float]:
    client = app.test_client()
    login_as(client, emu, "bench@example.com", {"google-oauth2": [CAL_READ]})
    assert client.get("/decorated").status_code == 200  # warm the cache
    before = emu.exchange_count()
    bare: list[float] = []
    decorated: list[float] = []
    for _ in range(ROUNDS):
        for path, out in (("/bare", bare), ("/decorated", decorated)):
            start = time.perf_counter()
            for _ in range(PER_ROUND):
                client.get(path)
            out.append((time.perf_counter() - start) / PER_ROUND * 1e6)
    assert emu.exchange_count() == before, "a warm cache must not exchange"
    return min(bare), min(decorated)


def main() -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    redis = RedisServer()
    try:
        with Emulator() as emu:
            for name, config in (
                ("in-process", {}),
                ("redis", {"TOKEN_VAULT_CACHE": redis.url}),
            ):
                bare, deco = measure(make_app(emu, **config), emu)
                results[name] = {
                    "bare_us": bare,
                    "decorated_us": deco,
                    "overhead_us": deco - bare,
                    "ratio": deco / bare,
                }
    finally:
        redis.stop()
    print(f"warm-cache cost per request (best of {ROUNDS} rounds x {PER_ROUND} requests)")
    print(f"{'cache':<12}{'bare µs':>10}{'decorated µs':>14}{'overhead µs':>13}{'ratio':>8}")
    for name, r in results.items():
        print(
            f"{name:<12}{r['bare_us']:>10.1f}{r['decorated_us']:>14.1f}"
            f"{r['overhead_us']:>13.1f}{r['ratio']:>8.2f}"
        )
    return results


if __name__ == "__main__":
    main()
