"""What gunicorn serves in the scale-out benchmark: the deployment example plus two bench routes.

``gunicorn -c deploy/gunicorn.conf.py bench.scale_app:app`` (with the repository on the path):
``deploy/wsgi.py`` builds the app from the environment exactly as it would in production, and
``/bare`` and ``/decorated`` are added for the load generator.
"""

from __future__ import annotations

from bench.common import add_bench_routes
from deploy.wsgi import app

add_bench_routes(app)

__all__ = ["app"]
