"""create_future, create_task and task factories."""

import asyncio
import contextvars
import sys

import pytest

var = contextvars.ContextVar("var", default=None)


async def value(x):
    await asyncio.sleep(0)
    return x


def test_create_future_is_asyncio_future(loop):
    fut = loop.create_future()
    assert type(fut) is asyncio.Future
    assert fut.get_loop() is loop
    loop.call_soon(fut.set_result, 5)
    assert loop.run_until_complete(fut) == 5


def test_create_task_is_asyncio_task_with_name(loop):
    task = loop.create_task(value(1), name="my-task")
    assert type(task) is asyncio.Task
    assert task.get_name() == "my-task"
    assert task.get_loop() is loop
    assert loop.run_until_complete(task) == 1


def test_create_task_context(loop):
    ctx = contextvars.Context()
    ctx.run(var.set, "ctx-value")

    async def read():
        return var.get()

    assert loop.run_until_complete(loop.create_task(read(), context=ctx)) == "ctx-value"


@pytest.mark.skipif(sys.version_info < (3, 12), reason="Task(eager_start=) is new in Python 3.12")
def test_create_task_eager_start(loop):
    started = []

    async def body():
        started.append(True)
        return 7

    async def main():
        task = loop.create_task(body(), eager_start=True)
        # An eager task runs synchronously up to its first suspension.
        assert started == [True] and task.done()
        return await task

    assert loop.run_until_complete(main()) == 7


def test_create_task_takes_the_coroutine_by_keyword(any_loop):
    task = any_loop.create_task(coro=value(2), name="by-keyword")
    assert task.get_name() == "by-keyword"
    assert any_loop.run_until_complete(task) == 2
    with pytest.raises(TypeError):
        any_loop.create_task(name="no coroutine")


def test_create_task_rejects_non_coroutines(loop):
    with pytest.raises(TypeError):
        loop.create_task(42)
    with pytest.raises(TypeError):
        loop.create_task()


def test_task_factory_receives_loop_and_coro(loop):
    calls = []

    def factory(lp, coro, **kwargs):
        calls.append((lp, kwargs))
        return asyncio.Task(coro, loop=lp, **kwargs)

    loop.set_task_factory(factory)
    assert loop.get_task_factory() is factory
    task = loop.create_task(value(3), name="named")
    assert loop.run_until_complete(task) == 3
    assert task.get_name() == "named"
    assert calls[0][0] is loop
    loop.set_task_factory(None)
    assert loop.get_task_factory() is None


def test_task_factory_must_be_callable(loop):
    with pytest.raises(TypeError, match="task factory must be a callable or None"):
        loop.set_task_factory(1)


def test_gather_many_tasks(loop):
    async def main():
        return await asyncio.gather(*(value(i) for i in range(2000)))

    assert loop.run_until_complete(main()) == list(range(2000))


def test_task_cancellation(loop):
    async def forever():
        await asyncio.sleep(3600)

    async def main():
        task = loop.create_task(forever())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return task.cancelled()

    assert loop.run_until_complete(main()) is True


def test_all_tasks_and_current_task(loop):
    async def main():
        me = asyncio.current_task()
        others = [loop.create_task(asyncio.sleep(0.01)) for _ in range(3)]
        tasks = asyncio.all_tasks()
        await asyncio.gather(*others)
        return me in tasks and all(t in tasks for t in others)

    assert loop.run_until_complete(main())


def test_timeouts_and_wait_for(loop):
    async def main():
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.01):
                await asyncio.sleep(1)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.sleep(1), 0.01)
        return "ok"

    assert loop.run_until_complete(main()) == "ok"


def test_task_group(loop):
    async def main():
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(value(i)) for i in range(10)]
        return [t.result() for t in tasks]

    assert loop.run_until_complete(main()) == list(range(10))
