"""pytest fixtures: a real Sluice broker per test, failed on panic or ERROR in its stderr."""

import pytest

from harness import Broker


@pytest.fixture
def broker_factory(request):
    """Makes brokers (started) with extra --override properties; all are checked and stopped."""
    brokers = []

    def make(overrides=None, start=True):
        b = Broker(overrides=overrides)
        brokers.append(b)
        if start:
            b.start()
        return b

    yield make

    problems = []
    for b in brokers:
        try:
            if b.proc is not None:
                rc = b.stop()
                # SIGTERM is a clean shutdown: Kafka exits 0 (a signal death would be negative).
                if rc not in (0, None):
                    problems.append(f"broker exited with {rc} on SIGTERM")
        except RuntimeError as e:
            problems.append(str(e))
        problems.extend(b.problems())
        tail = b.stderr_text()[-4000:]
        b.cleanup()
        if problems:
            pytest.fail(
                "broker stderr shows a panic/ERROR or a bad shutdown:\n  "
                + "\n  ".join(problems[:20])
                + "\n--- stderr tail ---\n"
                + tail,
                pytrace=False,
            )


@pytest.fixture
def broker(broker_factory):
    """A started broker with default configuration; yields the Broker (use .bootstrap)."""
    return broker_factory()
