"""Tenant administration: the Management API client, ``setup``, ``doctor`` and the CLI.

Nothing on a request's path imports from here except the Management API client, which the
request-time API uses to list and remove a user's connected accounts.
"""
