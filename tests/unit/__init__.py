"""Unit tests, one file per runtime module where there is one."""
