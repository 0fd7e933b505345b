"""Tenant administration: the CLI, setup, doctor and the Management API client."""
