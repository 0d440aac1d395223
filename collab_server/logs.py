"""One log format for every logger (ours, tornado's, traitlets'): text or JSON lines.

Text: ``[I 2026-12-07 23:40:01.123 collab_server] message``. JSON: one object per
line with ``time`` (UTC, ISO 8601), ``level``, ``logger`` and ``message``; access
lines add ``method``, ``path``, ``status``, ``duration_ms`` and ``remote_ip``, and a
traceback comes as ``exc_info``.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from typing import Any

from tornado.log import access_log, gen_log
from tornado.web import HTTPError, RequestHandler

APP_LOGGER = "collab_server"
TEXT_FORMAT = "[%(levelname)1.1s %(asctime)s.%(msecs)03d %(name)s] %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
ACCESS_FIELDS = ("method", "path", "status", "duration_ms", "remote_ip")
LOG_STYLES = ("text", "json")


class JSONFormatter(logging.Formatter):
    """A log record as one JSON object on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in ACCESS_FIELDS:
            if name in record.__dict__:
                entry[name] = record.__dict__[name]
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str)


def logging_config(
    style: str, level: int | str, text_format: str = TEXT_FORMAT, datefmt: str = DATE_FORMAT
) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` dict: one stderr handler, on the root logger.

    Every logger propagates to it, the application's (``collab_server``) included,
    so all lines share one format. ``style`` is "text" (``text_format`` with
    ``datefmt``) or "json".
    """
    if style not in LOG_STYLES:
        raise ValueError(f"log style {style!r} is not one of {LOG_STYLES}")
    formatter: dict[str, Any] = (
        {"()": JSONFormatter}
        if style == "json"
        else {"format": text_format, "datefmt": datefmt}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"console": formatter},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "console",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": level, "handlers": ["console"]},
        "loggers": {APP_LOGGER: {"level": "NOTSET", "handlers": [], "propagate": True}},
    }


def access_level(status: int) -> int:
    """The level of a response's log line: 401 and 404 are routine (an anonymous
    visit, a stale link), other 4xx are WARNING, 5xx ERROR."""
    if status < 400 or status in (401, 404):
        return logging.INFO
    if status < 500:
        return logging.WARNING
    return logging.ERROR


def log_request(handler: RequestHandler) -> None:
    """Tornado's ``log_function``: one access line per request.

    The query string is left out: it may carry an API token (``?token=``).
    """
    request = handler.request
    status = handler.get_status()
    duration_ms = 1000.0 * request.request_time()
    fields = {
        "method": request.method,
        "path": request.path,
        "status": status,
        "duration_ms": round(duration_ms, 2),
        "remote_ip": request.remote_ip,
    }
    # A balancer probes /health every few seconds: a healthy answer is DEBUG, as JupyterHub's.
    level = logging.DEBUG if request.path == "/health" and status == 200 else access_level(status)
    access_log.log(
        level,
        "%d %s %s (%s) %.2fms",
        status,
        request.method,
        request.path,
        request.remote_ip,
        duration_ms,
        extra=fields,
    )


def log_http_error(handler: RequestHandler, error: HTTPError) -> None:
    """Log why a handler raised ``HTTPError`` (tornado would say WARNING for all).

    For the routine refusals (401, 404) the access line says enough: the reason is
    DEBUG. Other statuses log it at their access level.
    """
    if not error.log_message:
        return
    message = error.log_message % error.args if error.args else error.log_message
    request = handler.request
    level = access_level(error.status_code)
    gen_log.log(
        logging.DEBUG if level == logging.INFO else level,
        "%d %s %s: %s",
        error.status_code,
        request.method,
        request.path,
        message,
    )
