"""Name the protocol constants of Auth0 Token Vault that the emulator speaks."""

# These are protocol identifiers, not secrets.
TOKEN_VAULT_GRANT = (
    "urn:auth0:params:oauth:grant-type:token-exchange:federated-connection-access-token"  # noqa: S105  # nosec B105
)
REFRESH_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:refresh_token"  # noqa: S105  # nosec B105
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105  # nosec B105
FEDERATED_TOKEN_TYPE = "http://auth0.com/oauth/token-type/federated-connection-access-token"  # noqa: S105  # nosec B105
JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"  # noqa: S105  # nosec B105
#: The grant type of the CIBA token request (OpenID CIBA Core).
CIBA_GRANT = "urn:openid:params:grant-type:ciba"
VAULT_ACCESS_TOKEN_TYPE = "http://auth0.com/oauth/token-type/token-vault-access-token"  # noqa: S105  # nosec B105

#: Where the emulator serves its fake Google APIs (``https://www.googleapis.com``).
GOOGLE_API_PATH = "/google"
#: Where the emulator serves its fake Microsoft Graph (``https://graph.microsoft.com``).
GRAPH_API_PATH = "/microsoft"
#: Where the emulator serves its fake Slack Web API (``https://slack.com``; methods in ``/api/``).
SLACK_API_PATH = "/slack"
#: Where the emulator serves its fake GitHub REST API (``https://api.github.com``).
GITHUB_API_PATH = "/github"
