"""The project's tests: those that take the lab down and bring another network or
setting up run last, so that no shared lab fixture (the selftest pods, the suites'
runs) ever sees the lab change under it."""

import pytest

NEXT = pytest.StashKey["pytest.Item | None"]()  # the test that runs after the current one


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    last = [item for item in items if item.get_closest_marker("switches_lab")]
    if last:
        items[:] = [item for item in items if item not in last] + last


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    item.config.stash[NEXT] = nextitem  # for tests.lab.conftest.hand_on
    return (yield)


@pytest.fixture
def sigint():
    """SIGINT raises KeyboardInterrupt for the test, whatever the process inherited: a
    shell without job control starts background jobs with SIGINT ignored, and Python
    then installs no handler (a CI rehearsal run as `bash .ci/run &` failed the
    interrupt tests so)."""
    import signal

    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)
