"""The cache store interface, driven directly: Redis natively, and a cachelib directory cache."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from cachelib import FileSystemCache, SimpleCache

from flask_token_vault.errors import ConfigurationError
from flask_token_vault.store import (
    NO_GENERATION,
    CachelibStore,
    RedisStore,
    Store,
    build_store,
)


@pytest.fixture(params=["redis", "directory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "redis":
        yield build_store(request.getfixturevalue("redis_url"))
    else:
        yield build_store(str(tmp_path / "cache"))


def test_a_value_is_stored_read_and_deleted(store: Store) -> None:
    assert store.get("k") is None
    store.set("k", b"\x00value", 60)
    assert store.get("k") == b"\x00value" and store.exists("k")
    store.delete("k")
    assert store.get("k") is None and not store.exists("k")


def test_add_stores_only_when_absent(store: Store) -> None:
    assert store.add("lock", b"mine", 5.0) is True
    assert store.add("lock", b"theirs", 5.0) is False
    assert store.get("lock") == b"mine"


def test_release_deletes_only_a_lock_still_held_by_its_owner(store: Store) -> None:
    store.add("lock", b"mine", 5.0)
    store.release("lock", b"theirs")
    assert store.get("lock") == b"mine"
    store.release("lock", b"mine")
    assert store.get("lock") is None


def test_generation_and_value_come_back_together(store: Store) -> None:
    assert store.get_in_generation("gen", "tok:") == (NO_GENERATION, None)
    store.set("tok:" + NO_GENERATION, b"old", 60)
    assert store.get_in_generation("gen", "tok:") == (NO_GENERATION, b"old")
    store.set("gen", b"g2", 60)
    assert store.get_in_generation("gen", "tok:") == ("g2", None)
    store.set("tok:g2", b"new", 60)
    assert store.get_in_generation("gen", "tok:") == ("g2", b"new")


def test_only_the_in_process_cache_is_not_shared(tmp_path: Path, redis_url: str) -> None:
    assert build_store(None).shared is False
    assert build_store(SimpleCache()).shared is False
    assert build_store(FileSystemCache(str(tmp_path))).shared is True
    redis_store = build_store(redis_url)
    assert isinstance(redis_store, RedisStore) and redis_store.shared
    assert isinstance(build_store(redis.Redis.from_url(redis_url)), RedisStore)
    assert isinstance(build_store("file://" + str(tmp_path)), CachelibStore)


@pytest.mark.parametrize("value", ["ftp://cache", "relative/path", 42, "memcached://"])
def test_an_unusable_cache_setting_names_the_key(value: object) -> None:
    with pytest.raises(ConfigurationError, match="TOKEN_VAULT_CACHE"):
        build_store(value)
