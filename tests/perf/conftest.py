"""make bench prints its figures only: the functions' log lines and metric lines are still formatted as in Lambda
(the template's service and level; Powertools' embedded metric format), then written nowhere."""

from __future__ import annotations

import functools
import logging
import os

import pytest
from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics.provider.cloudwatch_emf import cloudwatch

from infra.template import load_template


@pytest.fixture(scope="session", autouse=True)
def functions_log_nowhere():
    environment = load_template().raw["Globals"]["Function"]["Environment"]["Variables"]
    service, level = environment["POWERTOOLS_SERVICE_NAME"], environment["POWERTOOLS_LOG_LEVEL"]
    with open(os.devnull, "w") as nowhere:
        # The first Logger of a service gives its handler to every later one (the handlers' Logger() calls); a
        # logger made earlier, at collection, keeps its own handler, whose stream is redirected instead.
        Logger(service=service, level=level, logger_handler=logging.StreamHandler(nowhere))
        for handler in logging.getLogger(service).handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(nowhere)
        # Powertools prints each metric document to standard output, where the figures go: its module's print
        # writes them nowhere instead.
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(cloudwatch, "print", functools.partial(print, file=nowhere), raising=False)
            yield
