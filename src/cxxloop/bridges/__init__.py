"""Bridges between sync and async code: ``sync_to_async``, ``async_to_sync``
and ``ThreadSensitiveContext``. The guide is docs/bridges.md."""

from ._thread_sensitive import ThreadSensitiveContext
from .async_to_sync import async_to_sync
from .sync_to_async import sync_to_async

__all__ = ["ThreadSensitiveContext", "async_to_sync", "sync_to_async"]
