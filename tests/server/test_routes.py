"""The URL table hands every handler exactly what its initialize() declares.

Tornado passes a route's kwargs to ``initialize`` only when a request
arrives, so a misspelt or missing service would fail on the first request to
that URL; binding every route's kwargs to its handler's signature here
catches it for all routes at once, including the login routes of each
configured method.
"""

from __future__ import annotations

import inspect

from tornado import web

from collab_server.routes import make_app
from tests.conftest import Server


def test_every_route_binds_to_its_handlers_initialize(server: Server) -> None:
    app = make_app(server.services, max_send_buffer=1024)
    rules = app.wildcard_router.rules
    assert len(rules) > 40
    for rule in rules:
        handler = rule.target
        assert isinstance(handler, type) and issubclass(handler, web.RequestHandler), rule
        signature = inspect.signature(handler.initialize)
        signature.bind(None, **rule.target_kwargs)  # raises TypeError naming the mistake
    default = app.settings["default_handler_class"]
    inspect.signature(default.initialize).bind(None, **app.settings["default_handler_args"])
