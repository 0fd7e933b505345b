"""Gunicorn settings for a Flask-Token-Vault app: ``gunicorn -c gunicorn.conf.py wsgi:app``.

Every value can be changed from the environment, so one file serves every host. ``make bench``
runs two instances of this file (4 workers each) against one Redis.
"""

from __future__ import annotations

import multiprocessing
import os

# Behind a reverse proxy on the same host keep the loopback default; in a container, bind
# 0.0.0.0:8000 through GUNICORN_BIND and let the platform's load balancer reach it.
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")

# Processes: WEB_CONCURRENCY (the usual platform variable), else two per core plus one.
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))

# Threads: a view that calls Google or Microsoft spends most of its time waiting on the
# network, and threads of one worker share its in-process single flight on top of Redis'.
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "8"))

# Keep-alive between the proxy (or load balancer) and gunicorn saves a TCP handshake a request.
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))

# Longer than TOKEN_VAULT_DEADLINE (15 s by default) plus a provider call, so a slow Auth0 answer
# ends as the extension's own error rather than a killed worker.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 30

# Loading the app once in the master is safe: the extension opens no connection (Redis, Auth0)
# before the first request, and redis-py and requests open their own in each worker.
preload_app = True

# Which proxies may set X-Forwarded-*; the app's ProxyFix (PROXY_HOPS) reads them.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

# Access log to stdout only when asked: the platform usually logs requests at the proxy.
accesslog = os.environ.get("GUNICORN_ACCESSLOG") or None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")
