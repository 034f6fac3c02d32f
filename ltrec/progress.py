"""The one progress callback: ``progress(done, message)``, ``done`` the finished share in [0, 1].

Training, import, the demo build, simulation, tuning and reports all take one (``None``: no
reports); the CLI prints each call as a line on stderr, a page moves a progress bar.
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[float, str], None]


def report(progress: Progress | None, done: float, message: str) -> None:
    """Call a progress callback if there is one (``done`` clipped to [0, 1])."""
    if progress is not None:
        progress(float(min(1.0, max(0.0, done))), message)
