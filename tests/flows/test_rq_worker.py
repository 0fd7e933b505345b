"""The worked example on a real queue: RQ workers refresh calendars with no session.

Three real ``rq worker`` processes (forking a work horse per job, as RQ does by default) run
60 jobs, three per user for 20 users, against a real Redis and the emulator. They share the
token cache in that Redis, so the emulator sees 20 Privileged Worker exchanges, not 60.
"""

from __future__ import annotations

import os
import subprocess
import sys

import rq
from redis import Redis

from example_app.tasks import refresh_calendar
from flask_token_vault_emulator import Emulator
from tests.helpers import ROOT
from tests.helpers.apps import CAL_READ
from tests.helpers.keys import register_client_key, rsa_key_pem

USERS = 20
JOBS_PER_USER = 3


def test_20_users_x_3_jobs_cost_20_exchanges(emu: Emulator, redis_url: str) -> None:
    credential = register_client_key(emu)
    emu.set_privileged_access(credential, {"google-oauth2": [CAL_READ]})
    users = []
    for i in range(USERS):
        email = f"user{i}@example.com"
        emu.connect_account(email, "google-oauth2", [CAL_READ])
        users.append(emu.user_id_for(email))
    connection = Redis.from_url(redis_url)
    queue = rq.Queue(connection=connection)
    jobs = [queue.enqueue(refresh_calendar, user) for user in users for _ in range(JOBS_PER_USER)]
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SECRET_KEY": "rq-example-secret-key-0123456789",
        "AUTH0_DOMAIN": emu.url,
        "AUTH0_CLIENT_ID": emu.client_id,
        "GOOGLE_API_BASE": emu.google_api_base,
        "AUTH0_CLIENT_PRIVATE_KEY": rsa_key_pem(),
        "TOKEN_VAULT_CACHE": redis_url,
    }
    env.pop("AUTH0_CLIENT_SECRET", None)
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "rq.cli", "worker", "--burst", "--url", redis_url, "-q"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [worker.communicate(timeout=240)[0] for worker in workers]
    assert all(worker.returncode == 0 for worker in workers), outputs
    results = [job.return_value(refresh=True) for job in jobs]
    failed = [job.id for job in jobs if job.get_status(refresh=True) != "finished"]
    assert not failed, outputs
    assert {r["user_id"] for r in results if r} == set(users)
    assert all(r and r["events"] > 0 for r in results)
    assert emu.exchange_count() == USERS
    assert all(emu.exchange_count(user) == 1 for user in users)
    connection.close()
