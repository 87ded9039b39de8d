"""The event loop policy, for code that creates loops through asyncio's policy.

asyncio deprecates policies in 3.14 and removes them in 3.16; where they
are gone, cxxloop has no EventLoopPolicy and install() raises.
"""

from __future__ import annotations

import warnings

from . import _asyncio_internals as internals
from ._loop import Loop

__all__ = ["install"]

if internals.UnixDefaultEventLoopPolicy is not None:

    class EventLoopPolicy(internals.UnixDefaultEventLoopPolicy):  # type: ignore[misc,valid-type]
        """An asyncio policy whose new_event_loop() returns a cxxloop Loop.

        Based on asyncio's Unix policy, so code that still uses its child
        watcher API (get_child_watcher/set_child_watcher, before 3.14) works.
        """

        _loop_factory = Loop

    __all__ += ["EventLoopPolicy"]


def install() -> None:
    """Make asyncio create cxxloop loops (asyncio.set_event_loop_policy).

    Policies are deprecated from 3.14, so there this warns as
    asyncio.set_event_loop_policy does; cxxloop.run() and
    loop_factory=cxxloop.new_event_loop are the ways that stay.
    """
    if internals.UnixDefaultEventLoopPolicy is None:
        raise RuntimeError("this asyncio has no event loop policies; use cxxloop.run() or loop_factory=")
    if internals.VERSION >= (3, 14):
        warnings.warn(
            "cxxloop.install() sets an asyncio event loop policy, which Python 3.14 deprecates; "
            "use cxxloop.run() or loop_factory=cxxloop.new_event_loop",
            DeprecationWarning,
            stacklevel=2,
        )
    internals.set_event_loop_policy(EventLoopPolicy())
