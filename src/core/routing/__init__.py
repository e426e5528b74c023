"""AutoRouter: turns ViewSets into FastAPI routes, once, when the app is built.

`router` holds AutoRouter, `routes` what each ViewSet or APIView becomes (RouteSpec), and
`endpoint` the per-request endpoint of one action (`action_endpoint`).
"""

from core.routing.router import AutoRouter
from core.routing.routes import RouteSpec

__all__ = ("AutoRouter", "RouteSpec")
