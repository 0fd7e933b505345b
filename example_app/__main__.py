"""Run the example app: ``python -m example_app`` (``PORT`` picks the port, default 5000)."""

from __future__ import annotations

import os

from werkzeug.serving import WSGIRequestHandler

from example_app import create_app


class QuietQueryHandler(WSGIRequestHandler):
    """Log requests without their query strings: the login callback carries a one-time code."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Log the method and path only."""
        path = self.path.split("?", 1)[0]
        self.log("info", '"%s %s" %s %s', self.command, path, code, size)


def main() -> None:
    """Serve the example app on 127.0.0.1."""
    app = create_app()
    port = int(os.environ.get("PORT", "5000"))
    print(f" * Example app: http://127.0.0.1:{port}")
    app.run(
        host="127.0.0.1",
        port=port,
        debug=False,
        use_reloader=False,
        request_handler=QuietQueryHandler,
    )


if __name__ == "__main__":
    main()
