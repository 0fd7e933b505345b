"""Property-based tests: scope parsing, redirect validation, cache keys, session sealing."""

from __future__ import annotations

import string
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import unquote, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flask_token_vault._connection_options import (
    is_valid_scope,
    split_api_scopes,
    split_provider_scopes,
    split_scopes,
)
from flask_token_vault._crypto import Crypto, InvalidToken
from flask_token_vault._urls import safe_next
from flask_token_vault.errors import InsufficientScope

Garbage = TypeVar("Garbage", str, bytes)

scope_token = st.text(
    alphabet=st.sampled_from(string.ascii_letters + string.digits + ":/._-"),
    min_size=1,
    max_size=30,
)
scope_lists = st.lists(scope_token, max_size=12)
separators = st.sampled_from([" ", ",", ", ", "  ", "\t", ",\n"])
CRYPTO = Crypto([b"property-test-secret-0123456789"])


@given(scope_lists, separators)
def test_split_scopes_round_trips_any_separator(scopes: list[str], sep: str) -> None:
    assert split_scopes(sep.join(scopes)) == tuple(dict.fromkeys(scopes))


@given(st.text(max_size=200))
def test_split_scopes_never_yields_empty_or_separators(raw: str) -> None:
    for scope in split_scopes(raw):
        assert scope and "," not in scope and not any(ch.isspace() for ch in scope)


# Anything but an ASCII space may sit inside an API scope: commas, tabs, other spaces.
api_scope = st.text(alphabet=st.characters(blacklist_characters=" "), min_size=1, max_size=20)


@given(st.lists(api_scope, max_size=8))
def test_api_scopes_split_on_ascii_spaces_only(scopes: list[str]) -> None:
    assert split_api_scopes(" ".join(scopes)) == tuple(dict.fromkeys(scopes))


@given(scope_lists, st.sampled_from([" ", ","]))
def test_provider_scopes_split_on_the_separator_auth0_joins_with(
    scopes: list[str], sep: str
) -> None:
    assert split_provider_scopes(sep.join(scopes)) == tuple(dict.fromkeys(scopes))


def test_provider_scopes_keep_other_whitespace_inside() -> None:
    assert split_provider_scopes("a\u00a0b c,d\te") == ("a\u00a0b", "c", "d\te")


@given(scope_lists, scope_lists)
def test_reconsent_union_keeps_every_granted_scope(granted: list[str], required: list[str]) -> None:
    error = InsufficientScope(connection="c", granted=granted, required=required)
    assert set(granted) <= set(error.union)
    assert set(required) <= set(error.union)
    assert set(error.union) == set(granted) | set(required)
    assert list(error.union) == sorted(error.union)
    assert set(error.missing) == set(required) - set(granted)


@given(scope_token)
def test_valid_scope_tokens_are_accepted(token: str) -> None:
    assert is_valid_scope(token)


@given(st.text(max_size=300))
@settings(max_examples=500)
def test_safe_next_only_returns_same_site_paths(value: str) -> None:
    result = safe_next(value)
    if result is None:
        return
    assert result == value
    for candidate in (value, unquote(value)):
        parts = urlsplit(candidate)
        assert not parts.scheme and not parts.netloc
        assert candidate.startswith("/") and not candidate.startswith("//")
        assert "\\" not in candidate
        assert all(ord(ch) >= 0x20 and ord(ch) != 0x7F for ch in candidate)


@pytest.mark.parametrize(
    "value",
    ["/%2F/evil.example", "/%2f%2fevil.example", "/%5Cevil.example", "/x%0d%0aSet-Cookie:a"],
)
def test_safe_next_refuses_what_is_dangerous_only_once_decoded(value: str) -> None:
    assert unquote(value) != value and safe_next(unquote(value)) is None  # the decoded form is bad
    assert safe_next(value) is None


@given(st.from_regex(r"/[a-z0-9/_-]{0,40}(\?[a-z0-9=&]{0,20})?", fullmatch=True))
def test_ordinary_paths_are_accepted(path: str) -> None:
    if not path.startswith("//"):
        assert safe_next(path) == path


parts = st.text(max_size=40)


@given(parts, parts, parts, parts)
def test_cache_key_is_injective_and_hides_its_parts(a: str, b: str, c: str, d: str) -> None:
    key = CRYPTO.keyed_hash(a, b, c, d)
    assert len(key) == 64 and all(ch in "0123456789abcdef" for ch in key)
    # Moving a boundary between parts changes the key (length-prefixed joining).
    if b:
        assert CRYPTO.keyed_hash(a + b[0], b[1:], c, d) != key
    for part in (a, b, c, d):
        if len(part) >= 8:
            assert part not in key


@given(st.text(max_size=500))
def test_session_sealing_round_trips_and_hides(plaintext: str) -> None:
    sealed = CRYPTO.seal_session(plaintext)
    assert CRYPTO.open_session(sealed) == plaintext
    if len(plaintext) >= 8:
        assert plaintext not in sealed


def _refuses(open_sealed: Callable[[Garbage], object], garbage: Garbage) -> None:
    """Check only InvalidToken comes out of opening ``garbage``: no other error, no plaintext."""
    try:
        opened = open_sealed(garbage)
    except InvalidToken:
        return
    raise AssertionError(f"arbitrary input {garbage!r} opened as {opened!r}")


@given(st.text(max_size=200))
@settings(max_examples=300)
def test_opening_arbitrary_text_never_crashes(garbage: str) -> None:
    """Only InvalidToken comes out of arbitrary input: no other exception, no plaintext."""
    _refuses(CRYPTO.open_session, garbage)


@given(st.binary(max_size=200))
def test_opening_arbitrary_cache_bytes_never_crashes(garbage: bytes) -> None:
    _refuses(CRYPTO.open_cache, garbage)
