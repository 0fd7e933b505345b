"""The mutants :mod:`mutants` runs: one-place changes of security lines, with their tests.

Each :class:`Mutant` names a file, a text that must occur in it exactly once, what replaces it,
and the tests that must fail on the change. A line added on a security path gets its mutant here.
"""

from __future__ import annotations

from dataclasses import dataclass

PACKAGE = "flask_token_vault/"

# Test selections (pytest arguments), by what they exercise.
_MUTANTS_FILE = "tests/reliability/test_mutants.py::"
TIME_CLAIMS = (
    "tests/reliability/test_hostile.py",
    "tests/reliability/test_sessions.py",
    "-k",
    "time_claims or under_attack",
)
API_SCOPES = ("tests/reliability/test_hostile.py", "-k", "api_scopes")
PROVIDER_SCOPES = (
    "tests/flows/test_flow.py::test_scopes_auth0_reports_joined_by_commas_count_one_by_one",
    "tests/unit/test_properties.py",
    "-k",
    "provider or commas",
)
SESSION_TIMES = ("tests/reliability/test_sessions.py", "-k", "not_a_time")
SIGN_OUT = ("tests/reliability/test_sessions.py", "-k", "signing_out")
DURABLE_ENDS = ("tests/unit/test_durable_endings.py",)
ADAPTERS = (
    "tests/flows/test_sdk_common.py",
    "tests/flows/test_sdk_google.py",
    "tests/flows/test_sdk_httpx.py",
    "tests/flows/test_sdk_slack.py",
    "tests/flows/test_sdk_github.py",
    "tests/flows/test_sdk_microsoft.py",
)
CLUSTER = (
    "tests/unit/test_store.py",
    "tests/admin/test_doctor_cache.py",
    "tests/reliability/test_redis_deployments.py",
    "-k",
    "cluster or one_exchange_per_user",
)


def _one(test: str) -> tuple[str, ...]:
    return (_MUTANTS_FILE + test,)


@dataclass(frozen=True)
class Mutant:
    """One change: in ``path``, ``old`` (found exactly once) becomes ``new``."""

    name: str
    path: str
    old: str
    new: str
    #: The pytest arguments of the tests that must fail on it.
    tests: tuple[str, ...]
    #: Why no test can tell it from the original, when that is so (it is run all the same).
    equivalent: str = ""


def _m(
    name: str, path: str, old: str, new: str, tests: tuple[str, ...], equivalent: str = ""
) -> Mutant:
    return Mutant(name, PACKAGE + path, old, new, tests, equivalent)


MUTANTS: tuple[Mutant, ...] = (
    # -- the survivors of the last pass (issue 27), on today's lines ---------------------------
    _m(
        "session: the sealed refresh token is not bound to its user",
        "_session.py",
        "json.dumps([state.settings.issuer, state.settings.client_id, sub])",
        "json.dumps([state.settings.issuer, state.settings.client_id])",
        _one("test_the_sealed_refresh_token_opens_for_its_own_user_only"),
    ),
    _m(
        "back-channel: a jti is remembered for 1 s",
        "_views.py",
        "claims.jti, claims.expires_at - state.clock.time() + 120",
        "claims.jti, 1",
        _one("test_a_logout_tokens_jti_is_remembered_while_the_token_lives"),
    ),
    _m(
        "back-channel: an ended-session record lives the idle timeout",
        "_state.py",
        "record_ttl=settings.session_lifetime or _NO_LIFETIME_RECORD_TTL,",
        "record_ttl=settings.session_idle_timeout or _NO_LIFETIME_RECORD_TTL,",
        _one("test_an_ended_session_stays_ended_for_the_whole_session_lifetime"),
    ),
    _m(
        "ID tokens: HS256 allowed beside RS256 (the list authlib is given)",
        "_oidc.py",
        'checked["id_token_signing_alg_values_supported"] = [SIGNING_ALGORITHM]',
        'checked["id_token_signing_alg_values_supported"] = [SIGNING_ALGORITHM, "HS256"]',
        _one("test_id_tokens_are_pinned_to_rs256_even_with_a_key_that_verifies_hs256"),
    ),
    _m(
        "tenant tokens: HS256 allowed beside RS256 at decoding",
        "_oidc.py",
        "claims = jwt.decode(token, key, algorithms=[SIGNING_ALGORITHM]).claims",
        'claims = jwt.decode(token, key, algorithms=[SIGNING_ALGORITHM, "HS256"]).claims',
        _one("test_the_header_check_names_rs256_whatever_the_token_offers"),
        equivalent="the header check lets RS256 alone through and every key is RSA",
    ),
    _m(
        "bearer: the alg allow-list is widened at the header check",
        "_oidc.py",
        "if algorithm != SIGNING_ALGORITHM:",
        'if algorithm not in (SIGNING_ALGORITHM, "HS256", "RS384", "none"):',
        _one("test_the_header_check_names_rs256_whatever_the_token_offers"),
    ),
    _m(
        "bearer: any one of the required API scopes suffices",
        "_bearer.py",
        "return set(required) <= set(self.scopes)",
        "return not required or bool(set(required) & set(self.scopes))",
        _one("test_an_access_token_needs_every_required_api_scope"),
    ),
    _m(
        "bearer: the key set never goes stale",
        "_oidc.py",
        "and self.transport.clock.monotonic() - self._fetched_at < JWKS_MAX_AGE",
        "and True",
        _one("test_keys_the_tenant_dropped_stop_verifying_within_a_day"),
    ),
    _m(
        "connect link: the signature does not cover the scopes",
        "_connect_links.py",
        '"connect-scope/v2", connection, " ".join(sorted(set(scopes))), user,',
        '"connect-scope/v2", connection, "", user,',
        _one("test_a_connect_links_signature_covers_its_scopes"),
    ),
    _m(
        "cache: the store's own TTL is ignored when reading an entry",
        "_cache.py",
        "if entry.ttl is not None:",
        "if False:",
        _one("test_a_token_read_from_the_store_is_kept_no_longer_than_the_store_keeps_it"),
    ),
    _m(
        "cache: a token exchanged while another process invalidated the user is kept near",
        "_cache.py",
        "if self.shared and self.generation(slot.sub) != generation:",
        "if False:",
        _one("test_a_token_exchanged_while_another_process_signed_the_user_out_is_not_kept"),
    ),
    _m(
        "transport: redirects are followed",
        "_http.py",
        'kwargs.setdefault("allow_redirects", False)',
        'kwargs.setdefault("allow_redirects", True)',
        _one("test_a_token_request_answered_with_a_redirect_is_not_followed"),
    ),
    _m(
        "dpop: htu keeps the query",
        "_keys.py",
        '"htu": url.split("?", 1)[0].split("#", 1)[0],',
        '"htu": url,',
        _one("test_a_dpop_proof_names_the_url_without_query_or_fragment"),
    ),
    _m(
        "worker: the subject token lives an hour",
        "_keys.py",
        "ASSERTION_LIFETIME = 60",
        "ASSERTION_LIFETIME = 3600",
        _one("test_a_subject_token_lives_no_longer_than_auth0_accepts_it"),
    ),
    _m(
        "secrets: the start of the refresh token in the failed-revocation log line",
        "_state.py",
        'log.warning("refresh token revocation failed: error=%s", exc.error)',
        'log.warning("refresh token revocation failed: error=%s rt=%s", exc.error, '
        "refresh_token[:12])",
        _one("test_a_failed_revocation_logs_no_part_of_the_refresh_token"),
    ),
    _m(
        "connected accounts: a connection started by another user is completed",
        "_views.py",
        'if record["sub"] != user.sub:',
        "if False:",
        _one("test_a_connection_started_by_another_user_is_not_completed"),
    ),
    # -- this round: time claims bounded in one place ------------------------------------------
    _m(
        "times: no lower bound",
        "_clock.py",
        "return 0 <= value <= MAX_NUMERIC_DATE",
        "return value <= MAX_NUMERIC_DATE",
        TIME_CLAIMS,
    ),
    _m(
        "times: no upper bound",
        "_clock.py",
        "return 0 <= value <= MAX_NUMERIC_DATE",
        "return 0 <= value",
        TIME_CLAIMS,
    ),
    _m(
        "times: booleans pass",
        "_clock.py",
        "if isinstance(value, bool) or not isinstance(value, (int, float)):",
        "if not isinstance(value, (int, float)):",
        TIME_CLAIMS,
    ),
    _m(
        "times: the bound is infinite",
        "_clock.py",
        "MAX_NUMERIC_DATE = 253_402_300_799",
        'MAX_NUMERIC_DATE = float("inf")',
        TIME_CLAIMS,
    ),
    *(
        _m(
            f"times: {name} not checked",
            "_oidc.py",
            'TIME_CLAIMS = ("exp", "iat", "nbf", "auth_time")',
            "TIME_CLAIMS = ({})".format(
                ", ".join(
                    f'"{other}"' for other in ("exp", "iat", "nbf", "auth_time") if other != name
                )
            ),
            TIME_CLAIMS,
        )
        for name in ("exp", "iat", "nbf", "auth_time")
    ),
    _m(
        "times: check_times never refuses",
        "_oidc.py",
        "if name in claims and not is_numeric_date(claims[name]):",
        "if False:",
        TIME_CLAIMS,
    ),
    _m(
        "times: check_times not called",
        "_oidc.py",
        "check_times(claims, refuse)  # before the registry compares any of them",
        "pass",
        TIME_CLAIMS,
    ),
    # -- this round: scopes ----------------------------------------------------------------------
    _m(
        "API scopes split on any whitespace",
        "_connection_options.py",
        'part for part in value.split(" ") if part',
        "part for part in value.split() if part",
        API_SCOPES,
    ),
    _m(
        "API scopes split on commas and whitespace",
        "_connection_options.py",
        'part for part in value.split(" ") if part',
        r'part for part in re.split(r"[\s,]+", value) if part',
        API_SCOPES,
    ),
    _m(
        "bearer: the scope claim split on commas too",
        "_bearer.py",
        "found.update(split_api_scopes(scope))",
        'found.update(split_api_scopes(scope.replace(",", " ")))',
        API_SCOPES,
    ),
    _m(
        "bearer: permissions split on commas",
        "_bearer.py",
        "found.update(p for p in permissions if isinstance(p, str) and p)",
        'found.update(q for p in permissions if isinstance(p, str) for q in p.split(",") if q)',
        API_SCOPES,
    ),
    _m(
        "provider scopes split on any whitespace",
        "_connection_options.py",
        'part for part in re.split(r"[ ,]", value) if part',
        r'part for part in re.split(r"[\s,]", value) if part',
        PROVIDER_SCOPES,
    ),
    _m(
        "provider scopes not split on commas",
        "_connection_options.py",
        'part for part in re.split(r"[ ,]", value) if part',
        'part for part in value.split(" ") if part',
        PROVIDER_SCOPES,
    ),
    _m(
        "exchange: Auth0's provider scopes split on spaces only",
        "_exchange.py",
        "scopes=split_provider_scopes(raw_scope)",
        'scopes=tuple(s for s in raw_scope.split(" ") if s)',
        PROVIDER_SCOPES,
    ),
    # -- this round: session record times ----------------------------------------------------
    _m(
        "session: any number is a time",
        "_session.py",
        "    return is_numeric_date(value)",
        "    return isinstance(value, (int, float)) and not isinstance(value, bool)",
        SESSION_TIMES,
    ),
    _m(
        "session: seen not checked",
        "_session.py",
        'if user is None or not _is_time(record.get("seen")):',
        "if user is None:",
        SESSION_TIMES,
    ),
    _m(
        "session: at not checked",
        "_session.py",
        'and _is_time(record.get("at"))\n',
        "and True\n",
        SESSION_TIMES,
    ),
    # -- this round: sign-out without sid ----------------------------------------------------
    _m(
        "sign-out: ended by sid only",
        "_views.py",
        "state.revocations.end(sid=user.sid, sign_in=user.sign_in)",
        "state.revocations.end(sid=user.sid)",
        SIGN_OUT,
    ),
    _m(
        "sign-out: requests do not check the sign-in",
        "_tokens.py",
        "user.sub, user.sid, user.logged_in_at, user.sign_in",
        "user.sub, user.sid, user.logged_in_at",
        SIGN_OUT,
    ),
    _m(
        "sign-out: the sign-in's record is never read",
        "_revocation.py",
        'own = ("sid", sid) if sid else ("sign_in", sign_in) if sign_in else None',
        'own = ("sid", sid) if sid else None',
        SIGN_OUT,
    ),
    _m(
        "sign-out: the sign-in named before Auth0's sid",
        "_revocation.py",
        '(("sid", sid), ("sign_in", sign_in), ("sub", sub))',
        '(("sign_in", sign_in), ("sid", sid), ("sub", sub))',
        SIGN_OUT,
    ),
    _m(
        "sign-out: the near answer is kept per user, not per session",
        "_revocation.py",
        'near = (sub, *(own or ("", "")))',
        'near = (sub, "", "")',
        SIGN_OUT,
    ),
    _m(
        "sign-out: the sign-in id is the user's",
        "_session.py",
        'sign_in=hashlib.sha256(str(record["rt"]).encode()).hexdigest()[:32],',
        'sign_in=str(record["sub"]),',
        SIGN_OUT,
    ),
    _m(
        "sign-out: no sign-in id",
        "_session.py",
        'sign_in=hashlib.sha256(str(record["rt"]).encode()).hexdigest()[:32],',
        'sign_in="",',
        SIGN_OUT,
    ),
    # -- durable ends (an end or a new generation the cache cannot take yet) -------------------
    _m(
        "durable ends: an end still waiting for the cache is not checked",
        "_revocation.py",
        "return signed_in_at <= waiting  # but the ends this process knows of still hold",
        "return False",
        DURABLE_ENDS,
    ),
    _m(
        "durable ends: requests do not write waiting ends again",
        "_revocation.py",
        "        if self._pending.due():\n            self._pending.flush()",
        "        if False:\n            self._pending.flush()",
        DURABLE_ENDS,
    ),
    _m(
        "durable ends: a written end is kept waiting",
        "_store.py",
        "if self.items.get(key) == value:\n                    del self.items[key]",
        "if False:\n                    del self.items[key]",
        DURABLE_ENDS,
    ),
    _m(
        "durable ends: a waiting generation is not written before a read",
        "_cache.py",
        "        if self._pending.due():\n            self._pending.flush(",
        "        if False:\n            self._pending.flush(",
        DURABLE_ENDS,
    ),
    # -- cluster keys (one user's keys in one hash slot; a node of a cluster refused) ------------
    _m(
        "cluster keys: no hash tag, a user's keys scatter over slots",
        "_store.py",
        'return f"tv:{{{digest[:32]}}}:{kind}"',
        'return f"tv:{digest[:32]}:{kind}"',
        CLUSTER,
    ),
    _m(
        "cluster keys: a one-node URL of a cluster node is not told apart",
        "_redis.py",
        'if kind == "moved" and not self.cluster and _is_moved(exc):',
        "if False:",
        CLUSTER,
    ),
    _m(
        "cluster keys: a cluster client is taken for one node",
        "_redis.py",
        "self.cluster = is_cluster(client)",
        "self.cluster = False",
        CLUSTER,
    ),
    _m(
        "cluster keys: the generation script reads its value's key undeclared",
        "_redis.py",
        "local key = KEYS[2] .. generation",
        "local key = 'tv:' .. generation",
        CLUSTER,
    ),
    # -- provider SDK adapters (a token per user, dropped everywhere on the provider's 401) -------
    _m(
        "adapters: a request's source serves whoever is signed in now",
        "_sources.py",
        "if not has_request_context() or request_state().subject.sub != self._sub:",
        "if not has_request_context():",
        ADAPTERS,
    ),
    _m(
        "adapters: httpx keeps a token the provider refused",
        "providers/httpx_auth.py",
        "if response.status_code == 401:",
        "if response.status_code == 999:",
        ADAPTERS,
    ),
    _m(
        "adapters: google-auth's refresh after a 401 reuses the refused token",
        "providers/google_auth.py",
        "            self.source.reject(self.token)\n",
        "            pass\n",
        ADAPTERS,
    ),
    _m(
        "adapters: google-auth is told the token never expires",
        "providers/google_auth.py",
        "self.expiry = _EPOCH + datetime.timedelta(seconds=self._renew_at)",
        "self.expiry = None",
        ADAPTERS,
    ),
    _m(
        "adapters: Slack's invalid_auth is not a refused token",
        "providers/slack_client.py",
        'REFUSED = frozenset({"invalid_auth", "token_expired", "token_revoked"})',
        'REFUSED = frozenset({"token_revoked"})',
        ADAPTERS,
    ),
    _m(
        "adapters: a job's rejected token stays in the shared cache",
        "_sources.py",
        "get_state(self._app).cache.reject(self.user_id, self.connection, access_token, [slot])",
        "pass",
        ADAPTERS,
    ),
    _m(
        "adapters: PyGithub's refused token is not dropped before the call runs again",
        "providers/github_auth.py",
        "        self.source.reject(sent[1])\n",
        "        pass\n",
        ADAPTERS,
    ),
)
