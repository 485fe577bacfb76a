"""Fixtures of the reliability battery: figures reported on the terminal, with or without -s."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.reliability.battery import Figures


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Iterator[Callable[[str], Figures]]:
    """`figures("kill soak")` returns a Figures; every one is printed when the test ends.

    Printed even when the test fails (the numbers help to diagnose it), through the capture
    manager so that they reach the terminal without -s.
    """
    made: list[Figures] = []

    def make(title: str) -> Figures:
        made.append(Figures(title))
        return made[-1]

    yield make
    capture = request.config.pluginmanager.getplugin("capturemanager")
    for figure in made:
        if capture is not None:
            with capture.global_and_fixture_disabled():
                print("\n" + figure.line(), flush=True)
        else:
            print(figure.line(), flush=True)
