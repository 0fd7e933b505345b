"""Serve an app over real HTTP, for the emulator (or a browser) to call it."""

from __future__ import annotations

import threading
from typing import TypeVar

from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

_Served = TypeVar("_Served", bound="LiveServer")


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Keep the test output free of access-log lines."""


class LiveServer:
    """Serve an app over real HTTP on a free 127.0.0.1 port (for the emulator to call it)."""

    def __init__(self, app: Flask) -> None:
        self._server: BaseWSGIServer = make_server(
            "127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler
        )
        #: The server's base URL, e.g. ``http://127.0.0.1:PORT``.
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def start(self: _Served) -> _Served:
        """Serve from a daemon thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (if it was started) and wait for the thread."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=10)
        self._server.server_close()

    def __enter__(self: _Served) -> _Served:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
