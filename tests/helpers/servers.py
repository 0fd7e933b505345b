"""Serve an app over real HTTP, for the emulator (or a browser) to call it."""

from __future__ import annotations

from typing import TypeVar

from flask import Flask
from werkzeug.serving import WSGIRequestHandler, make_server

from flask_token_vault_emulator.serving import Listener, ServingThread

_Served = TypeVar("_Served", bound="LiveServer")


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Keep the test output free of access-log lines."""


class LiveServer(Listener):
    """Serve an app over real HTTP on a free 127.0.0.1 port (for the emulator to call it)."""

    def __init__(self, app: Flask) -> None:
        self._server = make_server(
            "127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler
        )
        #: The server's base URL, e.g. ``http://127.0.0.1:PORT``.
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._serving: ServingThread | None = None

    def start(self: _Served) -> _Served:
        """Serve from a daemon thread."""
        self._serving = ServingThread(self._server, f"live-server {self.url}")
        return self

    def stop(self) -> None:
        """Stop serving (if it was started) and close the socket."""
        if self._serving is not None:
            self._serving.stop()
        else:
            self._server.server_close()
