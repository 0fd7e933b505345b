"""Adapters that let the providers' own SDKs take their tokens from the vault.

One module per library, each imported only when an app imports it (the libraries are optional
extras): ``google_auth`` (``[google]``),
``microsoft`` (``[microsoft]``), ``slack_client`` and ``slack_async`` (``[slack]``),
``github_auth`` (``[github]``) and ``httpx_auth`` (``[httpx]``). Each holds a
:class:`~flask_token_vault.TokenSource` (a connection name means the current request's user)
and nothing else: same cache, one exchange per token however many threads ask, the same typed
errors, and a provider's 401 drops the token everywhere before one retry.

(Layer: on top of the request-time API, beside the decorators.)
"""
