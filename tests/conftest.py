import pytest

from tests.support.mosquitto import Mosquitto


@pytest.fixture(scope="session")
def mosquitto():
    """A real mosquitto on a free loopback port, shared by the session's tests."""
    with Mosquitto() as broker:
        yield broker
