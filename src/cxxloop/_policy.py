"""The event loop policy, for code that creates loops through asyncio's policy."""

from __future__ import annotations

import asyncio

from ._loop import Loop


class EventLoopPolicy(asyncio.events.BaseDefaultEventLoopPolicy):
    """An asyncio policy whose new_event_loop() returns a cxxloop Loop."""

    _loop_factory = Loop


def install() -> None:
    """Make asyncio create cxxloop loops (asyncio.set_event_loop_policy)."""
    asyncio.set_event_loop_policy(EventLoopPolicy())
