"""Encryption keys: rotation, purpose binding, tamper detection."""

from __future__ import annotations

import pytest
from flask import Flask

from flask_token_vault import TokenVault
from flask_token_vault._crypto import Crypto, InvalidToken
from flask_token_vault_emulator import Emulator
from tests.helpers.apps import alice_client, make_app

OLD = b"old-secret-key-0123456789abcdef"
NEW = b"new-secret-key-0123456789abcdef"


def test_rotation_reads_old_values_and_writes_with_the_first_key() -> None:
    old = Crypto([OLD])
    sealed = old.seal_session("refresh-token")
    rotated = Crypto([NEW, OLD])
    assert rotated.open_session(sealed) == "refresh-token"
    fresh = rotated.seal_session("refresh-token")
    with pytest.raises(InvalidToken):
        old.open_session(fresh)
    assert Crypto([NEW]).open_session(fresh) == "refresh-token"


def test_a_retired_key_no_longer_opens_anything() -> None:
    sealed = Crypto([OLD]).seal_session("refresh-token")
    with pytest.raises(InvalidToken, match="not configured"):
        Crypto([NEW]).open_session(sealed)


def test_purposes_do_not_mix() -> None:
    crypto = Crypto([OLD])
    sealed = crypto.seal_cache(b"x")
    with pytest.raises(InvalidToken):
        # Flip a bit of the tag (setting it to a fixed byte would change nothing 1 time in 256).
        crypto.open_cache(sealed[:-1] + bytes([sealed[-1] ^ 1]))
    with pytest.raises(InvalidToken):
        # A session value does not open as a cache value, even with the same secret.
        import base64

        raw = crypto.seal_session("x")
        crypto.open_cache(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))


def test_flipped_bit_is_detected() -> None:
    crypto = Crypto([OLD])
    sealed = bytearray(crypto.seal_cache(b"provider-token"))
    sealed[-1] ^= 1
    with pytest.raises(InvalidToken):
        crypto.open_cache(bytes(sealed))


def test_secret_key_fallbacks_keep_users_signed_in(emu: Emulator) -> None:
    before = make_app(emu, SECRET_KEY=OLD.decode())
    client = alice_client(before, emu)
    cookie = client.get_cookie("session")
    assert cookie is not None
    after = make_app(emu, SECRET_KEY=NEW.decode(), SECRET_KEY_FALLBACKS=[OLD.decode()])
    rotated = after.test_client()
    rotated.set_cookie("session", cookie.value)
    assert rotated.get("/calendar").status_code == 200


def test_configured_encryption_keys_rotate(emu: Emulator) -> None:
    before: Flask = make_app(emu, TOKEN_VAULT_ENCRYPTION_KEYS=[OLD.decode()])
    client = alice_client(before, emu)
    cookie = client.get_cookie("session")
    assert cookie is not None
    after = make_app(emu, TOKEN_VAULT_ENCRYPTION_KEYS=[NEW.decode(), OLD.decode()])
    rotated = after.test_client()
    rotated.set_cookie("session", cookie.value)
    assert rotated.get("/calendar").status_code == 200
    retired = make_app(emu, TOKEN_VAULT_ENCRYPTION_KEYS=[NEW.decode()]).test_client()
    retired.set_cookie("session", cookie.value)
    assert retired.get("/calendar", headers={"Accept": "application/json"}).status_code == 401
    assert TokenVault.state(after).crypto is not TokenVault.state(before).crypto
