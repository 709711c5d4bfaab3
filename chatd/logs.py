"""structlog, configured once: JSON lines when stderr is not a terminal, readable console when it is.

Libraries (hypercorn) log through the standard library; their records go through the same
processors and renderer, so in JSON mode every line on stderr is one JSON object.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal

import structlog

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def renders_json(fmt: Literal["auto", "json", "console"]) -> bool:
    return fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())


def configure_logging(
    level: str = "info", fmt: Literal["auto", "json", "console"] = "auto"
) -> None:
    as_json = renders_json(fmt)
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer()
    )
    exc_info: structlog.typing.Processor = (
        structlog.processors.format_exc_info if as_json else structlog.dev.set_exc_info
    )
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.StackInfoRenderer(), exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = _StderrHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            # A record's message becomes the event: hypercorn's words, not a constant name.
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(old)  # configured again (tests): one handler of ours, not two
    root.addHandler(handler)
    root.setLevel(_LEVELS[level])


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Ours, told apart from handlers others (pytest) put on the root logger."""
