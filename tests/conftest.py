import logging

import pytest

from tests.support.mosquitto import Mosquitto

# Loggers whose level a CLI command sets for its process (cli._quiet_logs): a command run
# in the test process must not change what later tests see logged.
_CLI_LOGGERS = ("", "webapp.push", "webapp.services")


@pytest.fixture(autouse=True)
def _logger_levels():
    saved = {name: logging.getLogger(name).level for name in _CLI_LOGGERS}
    yield
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


@pytest.fixture(scope="session")
def mosquitto():
    """A real mosquitto on a free loopback port, shared by the session's tests."""
    with Mosquitto() as broker:
        yield broker
