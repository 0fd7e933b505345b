"""Run the example app: ``python -m example_app`` (``PORT`` picks the port, default 5000)."""

from __future__ import annotations

import os

from example_app import create_app


def main() -> None:
    """Serve the example app on 127.0.0.1."""
    app = create_app()
    port = int(os.environ.get("PORT", "5000"))
    print(f" * Example app: http://127.0.0.1:{port}")
    app.run(host="127.0.0.1", port=port, debug=False, use_reloader=False)


if __name__ == "__main__":
    main()
