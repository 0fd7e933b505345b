"""Browser end-to-end tests (make e2e)."""
