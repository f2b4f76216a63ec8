"""``python -m tests.engine.azuread <engine-address>``: run the stand-in plugin (see ``__init__.py``)."""

from __future__ import annotations

import logging
import os
import sys

from tests.engine.azuread.provider import VERSION, AzureAdStandIn
from tests.engine.azuread.server import main

DEBUG_ENV = "POP3_OAUTH_STANDIN_DEBUG"


def run() -> None:
    """Log to stderr only (stdout carries the port), at DEBUG when ``POP3_OAUTH_STANDIN_DEBUG=1``."""
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if os.environ.get(DEBUG_ENV) == "1" else logging.WARNING,
        format="pulumi-resource-azuread (stand-in) %(levelname)s %(message)s",
    )
    for noisy in ("urllib3", "grpc"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    main(sys.argv[1:], VERSION, AzureAdStandIn())


if __name__ == "__main__":
    run()
