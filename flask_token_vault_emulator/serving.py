"""Serve a WSGI server from a daemon thread: the emulator's plain listener and its TLS one."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from typing import TypeVar

from werkzeug.serving import BaseWSGIServer


class ServingThread:
    """A WSGI server and the daemon thread serving it, until :meth:`stop`."""

    def __init__(self, server: BaseWSGIServer, name: str) -> None:
        """Start serving ``server`` from a daemon thread called ``name``."""
        self.server = server
        self.thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=name,
            daemon=True,
        )
        self.thread.start()

    def stop(self) -> None:
        """Stop serving, wait (10 seconds at most) for the thread to end and close the socket."""
        self.server.shutdown()
        self.thread.join(timeout=10)
        self.server.server_close()


_ListenerT = TypeVar("_ListenerT", bound="Listener")


class Listener(ABC):
    """Serve from a daemon thread between :meth:`start` and :meth:`stop`; ``with`` does both."""

    @abstractmethod
    def start(self: _ListenerT) -> _ListenerT:
        """Start serving; return self."""

    @abstractmethod
    def stop(self) -> None:
        """Stop serving."""

    def __enter__(self: _ListenerT) -> _ListenerT:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
