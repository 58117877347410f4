"""The JSON admin API under /api/v1 (CONTRACT.md), blueprint `bot.api:bp`.

Every route is declared with `api_route`, which records its OpenAPI
description next to the code, so /api/v1/openapi.json cannot drift from the
routes (a test checks each Flask rule under /api/v1 is described).
"""
from __future__ import annotations

from bot.api.common import bp  # noqa: F401

# Importing the route modules registers them on `bp`.
from bot.api import routes_core  # noqa: F401,E402
from bot.api import routes_capabilities  # noqa: F401,E402
# A capability's own route modules are imported by the app factory from its
# `Capability.api` (bot/web.py::install_blueprints), before `bp` is registered.
