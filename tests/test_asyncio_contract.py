"""The contract between cxxloop and the asyncio it runs on.

cxxloop.Loop inherits asyncio's Unix selector loop and overrides the hooks
asyncio's own code calls on it; cxxloop also uses asyncio's private names
(all looked up in cxxloop._asyncio_internals). A new CPython that changes
any of these must fail one of these tests by name, not a user's program:

- every call asyncio's own source makes to a method cxxloop overrides
  passes arguments that cxxloop's method accepts;
- every private name cxxloop uses still exists;
- every method cxxloop inherits from asyncio can work on cxxloop's state
  (what it reads exists, what it writes can be written), or cxxloop has
  removed it.
"""

from __future__ import annotations

import ast
import asyncio
import contextvars
import inspect
import pathlib
import ssl
import textwrap
from collections import defaultdict

import pytest

import cxxloop
from cxxloop import _asyncio_internals as internals
from cxxloop import _core

ASYNCIO_DIR = pathlib.Path(asyncio.__file__).parent
STDLIB_LOOP_CLASSES = [cls for cls in cxxloop.Loop.__mro__ if cls.__module__.startswith("asyncio.")]


def _defined_by_cxxloop() -> dict[str, type]:
    """Attribute name -> the cxxloop class that defines it (Loop, CoreLoop, mixins)."""
    owners: dict[str, type] = {}
    for cls in cxxloop.Loop.__mro__:
        if cls is object or cls.__module__.startswith("asyncio."):
            continue
        for name in vars(cls):
            owners.setdefault(name, cls)
    return owners


OVERRIDDEN = _defined_by_cxxloop()


class CallSite:
    def __init__(self, where: str, positional: int, starred: bool, keywords: tuple[str, ...]):
        self.where = where
        self.positional = positional
        self.starred = starred
        self.keywords = keywords

    def __repr__(self) -> str:
        starred = " + *args" if self.starred else ""
        return f"{self.where}: {self.positional} positional{starred}, keywords {self.keywords}"


def _loop_receivers(node: ast.AST, enclosing_class: str | None) -> bool:
    """True if the call's receiver is a loop: self._loop, loop, self.loop, or
    self inside one of the stdlib loop classes cxxloop inherits."""
    text = ast.unparse(node)
    if text in ("self._loop", "loop", "self.loop"):
        return True
    return text == "self" and enclosing_class in {cls.__name__ for cls in STDLIB_LOOP_CLASSES}


class _CallCollector(ast.NodeVisitor):
    def __init__(self, filename: str, sites: dict[str, list[CallSite]]):
        self.filename = filename
        self.sites = sites
        self.enclosing_class: str | None = None

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        outer, self.enclosing_class = self.enclosing_class, node.name
        self.generic_visit(node)
        self.enclosing_class = outer

    def visit_Call(self, node: ast.Call) -> None:
        self.generic_visit(node)
        if not isinstance(node.func, ast.Attribute):
            return
        method = node.func.attr
        if method not in OVERRIDDEN or not callable(getattr(cxxloop.Loop, method, None)):
            return
        if not _loop_receivers(node.func.value, self.enclosing_class):
            return
        if any(k.arg is None for k in node.keywords):
            return  # **kwargs passed on: nothing fixed to check
        self.sites[method].append(
            CallSite(
                f"asyncio/{self.filename}:{node.lineno}",
                sum(not isinstance(a, ast.Starred) for a in node.args),
                any(isinstance(a, ast.Starred) for a in node.args),
                tuple(sorted(k.arg for k in node.keywords)),
            )
        )


def _collect_call_sites() -> dict[str, list[CallSite]]:
    sites: dict[str, list[CallSite]] = defaultdict(list)
    for path in sorted(ASYNCIO_DIR.glob("*.py")):
        _CallCollector(path.name, sites).visit(ast.parse(path.read_text()))
    return sites


CALL_SITES = _collect_call_sites()


class Probe:
    """An argument that fails at first use, after argument parsing: each
    hook then stops at RuntimeError('Event loop is closed') or at this."""

    def __call__(self, *args, **kwargs):
        raise _Reached

    def __getattr__(self, name):
        raise _Reached

    def __index__(self):
        raise _Reached


class _Reached(Exception):
    pass


def _accepts(method_name: str, site: CallSite) -> str | None:
    """None if cxxloop's method takes this call's arguments, else why not.
    Python methods are bound to their signature; C methods are called, on a
    closed loop, with probe arguments: they parse them and then stop."""
    attr = inspect.getattr_static(cxxloop.Loop, method_name)
    positional = [Probe()] * site.positional
    # A keyword whose value the hook type-checks gets one of the right type.
    keywords = {k: contextvars.Context() if k == "context" else Probe() for k in site.keywords}
    if inspect.isfunction(attr) or isinstance(attr, (staticmethod, classmethod)):
        try:
            inspect.signature(getattr(cxxloop.Loop, method_name)).bind(None, *positional, **keywords)
        except TypeError as exc:
            return str(exc)
        return None
    loop = cxxloop.new_event_loop()
    loop.close()
    try:
        result = getattr(loop, method_name)(*positional, **keywords)
        if inspect.isawaitable(result) and hasattr(result, "close"):
            result.close()  # a sock_* call's coroutine-like op, never to be awaited
    except TypeError as exc:
        return str(exc)
    except (RuntimeError, _Reached, ValueError, AttributeError, OSError):
        return None
    return None


@pytest.mark.parametrize("method", sorted(CALL_SITES))
def test_every_call_asyncio_makes_to_an_overridden_hook_is_accepted(method):
    refused = [(site, why) for site in CALL_SITES[method] if (why := _accepts(method, site))]
    assert not refused, f"cxxloop's {method} refuses asyncio's calls: {refused}"


def test_the_hooks_asyncio_calls_are_found():
    # The collection above must see the hooks it exists for.
    assert {"_add_reader", "_make_socket_transport", "call_soon", "call_at"} <= set(CALL_SITES)
    if internals.VERSION >= (3, 15):
        assert any("context" in site.keywords for site in CALL_SITES["_make_socket_transport"])


@pytest.mark.parametrize(
    "owner, name", [(owner, name) for owner, names in internals.PRIVATE_NAMES_USED.items() for name in names]
)
def test_every_private_name_used_exists(owner, name):
    assert hasattr(owner, name), f"asyncio's {owner.__qualname__} has no {name!r} any more"


def test_ssl_objects_have_the_attributes_the_tls_transport_reads():
    sslobj = ssl.create_default_context().wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname="localhost")
    for name in internals.SSL_OBJECT_ATTRIBUTES:
        assert hasattr(sslobj, name), f"ssl.SSLObject has no {name!r} any more"
    assert type(sslobj._sslobj) is internals.SSLSocketType


def test_the_cores_private_names_are_all_accounted_for():
    known = {name for names in internals.PRIVATE_NAMES_USED.values() for name in names}
    known |= set(internals.SSL_OBJECT_ATTRIBUTES)
    unaccounted = _core._PRIVATE_NAMES - known - internals.ATTRIBUTES_SET - internals.OWN_PRIVATE_NAMES
    assert not unaccounted, f"private names the C++ core uses that _asyncio_internals does not list: {unaccounted}"


def _inherited_methods():
    seen = set()
    for cls in STDLIB_LOOP_CLASSES:
        for name, fn in vars(cls).items():
            if name in seen or name in OVERRIDDEN or not inspect.isfunction(fn):
                continue
            seen.add(name)
            if inspect.getattr_static(cxxloop.Loop, name) is fn:
                yield f"{cls.__name__}.{name}", fn


def _self_attributes(fn) -> tuple[set[str], set[str]]:
    tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    reads, writes = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
            (writes if isinstance(node.ctx, ast.Store) else reads).add(node.attr)
    return reads, writes


INHERITED = dict(_inherited_methods())


@pytest.mark.parametrize("qualname", sorted(INHERITED))
def test_every_inherited_method_works_on_cxxloops_state(qualname):
    fn = INHERITED[qualname]
    reads, writes = _self_attributes(fn)
    loop = cxxloop.new_event_loop()
    try:
        missing = sorted(attr for attr in reads if not hasattr(loop, attr))
        unwritable = []
        for attr in sorted(writes):
            try:
                setattr(loop, attr, getattr(loop, attr, None))
            except AttributeError:
                unwritable.append(attr)
    finally:
        loop.close()
    assert not missing and not unwritable, (
        f"{qualname} reads {missing} and writes {unwritable}, which cxxloop's loop lacks: "
        "override it, or remove it (internals.SELF_PIPE_METHODS shows how)"
    )


@pytest.mark.parametrize("name", internals.SELF_PIPE_METHODS)
def test_removed_methods_are_not_there(name):
    loop = cxxloop.new_event_loop()
    try:
        assert not hasattr(loop, name)
    finally:
        loop.close()
