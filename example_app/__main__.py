"""Run the example app: ``python -m example_app`` (``PORT`` picks the port, default 5000)."""

from __future__ import annotations

import os
import socket
import sys

from werkzeug.serving import WSGIRequestHandler

from example_app import create_app

HOST = "127.0.0.1"


class QuietQueryHandler(WSGIRequestHandler):
    """Log requests without their query strings: the login callback carries a one-time code."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Log the method and path only."""
        path = self.path.split("?", 1)[0]
        self.log("info", '"%s %s" %s %s', self.command, path, code, size)


def port_is_free(port: int) -> bool:
    """Tell whether the app could serve on ``port``: nothing answers there and it can be bound."""
    with socket.socket() as probe:
        probe.settimeout(0.5)
        if probe.connect_ex((HOST, port)) == 0:
            return False
    with socket.socket() as sock:
        # As werkzeug binds: a port a closed connection still holds (TIME_WAIT) is usable.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def busy_port_message(port: int) -> str:
    """Say that ``port`` is taken and which command picks a free one (one line)."""
    free = next((p for p in range(port + 1, port + 50) if p < 65536 and port_is_free(p)), None)
    other = free or port + 1
    return (
        f"Port {port} on {HOST} is taken by another program (on macOS, often the AirPlay "
        f"Receiver): run `make demo PORT={other}` (or `PORT={other} python -m example_app`)."
    )


def main() -> None:
    """Serve the example app on 127.0.0.1, or exit with one line when its port is taken."""
    port = int(os.environ.get("PORT", "5000"))
    # Before anything starts: the emulator and the tenant set-up would be for nothing.
    if not port_is_free(port):
        sys.exit(busy_port_message(port))
    app = create_app()
    print(f" * Example app: http://{HOST}:{port}")
    app.run(
        host=HOST,
        port=port,
        debug=False,
        use_reloader=False,
        request_handler=QuietQueryHandler,
    )


if __name__ == "__main__":
    main()
