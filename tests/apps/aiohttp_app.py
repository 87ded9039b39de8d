"""An aiohttp application for the worker tests; it reports its loop type."""

import asyncio
import os

from aiohttp import web


async def index(request):
    return web.json_response({"loop": type(asyncio.get_running_loop()).__module__, "pid": os.getpid()})


async def make_app():
    app = web.Application()
    app.router.add_get("/", index)
    return app
