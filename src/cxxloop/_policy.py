"""The event loop policy, for code that creates loops through asyncio's policy."""

from __future__ import annotations

import asyncio

from ._loop import Loop


class EventLoopPolicy(asyncio.DefaultEventLoopPolicy):  # type: ignore[misc,valid-type]
    """An asyncio policy whose new_event_loop() returns a cxxloop Loop.

    Based on asyncio's Unix policy, so code that still uses its child
    watcher API (get_child_watcher/set_child_watcher, before 3.14) works.
    """

    _loop_factory = Loop


def install() -> None:
    """Make asyncio create cxxloop loops (asyncio.set_event_loop_policy)."""
    asyncio.set_event_loop_policy(EventLoopPolicy())
