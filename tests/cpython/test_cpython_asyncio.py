"""CPython's own asyncio tests, run with cxxloop as the event loop.

See suites.py for what is imported, conftest.py for how the loop is
retargeted, and skips.py for every skipped test with its reason.
"""

import importlib
import unittest

import pytest

import cxxloop

try:
    from test.test_asyncio import utils as test_utils
except ImportError:  # e.g. Debian's python3 ships without the test package
    pytest.skip("this interpreter has no test.test_asyncio package (CPython's test suite)", allow_module_level=True)

from .suites import CLASSES, MIXINS, MODULES, PINNED_PREFIXES

# These tests police their own resources; their leaks are reported, not
# turned into errors of unrelated tests as the rest of our suite does.
pytestmark = pytest.mark.filterwarnings(
    "default::ResourceWarning", "default::pytest.PytestUnraisableExceptionWarning"
)


def _module(name):
    try:
        return importlib.import_module(f"test.test_asyncio.{name}")
    except ImportError:
        return None  # not in this Python's test package


def _publish(name, bases, namespace=None):
    # Defined here, so pytest's unittest collector picks it up and the node
    # id names the suite: "<module>__<Class>::<test>".
    globals()[name] = type(name, bases, {"__module__": __name__, **(namespace or {})})


def _new_cxxloop(self):
    return cxxloop.new_event_loop()


def _export_module(name):
    module = _module(name)
    if module is None:
        return
    for cls_name, obj in vars(module).items():
        if (
            isinstance(obj, type)
            and issubclass(obj, unittest.TestCase)
            and obj.__module__ == module.__name__
            and not cls_name.startswith(PINNED_PREFIXES)
        ):
            _publish(f"{name}__{cls_name}", (obj,))


def _export_mixin(name, mixins, hook, base):
    module = _module(name)
    if module is not None and hasattr(module, mixins[0]):
        case = test_utils.TestCase if base == "utils" else unittest.TestCase
        bases = tuple(getattr(module, m) for m in mixins if hasattr(module, m))
        _publish(f"{name}__{mixins[0]}", (*bases, case), {hook: _new_cxxloop})


def _export_class(name, cls_name):
    module = _module(name)
    if module is not None and hasattr(module, cls_name):
        _publish(f"{name}__{cls_name}", (getattr(module, cls_name),))


for _entry in MODULES:
    _export_module(_entry)
for _entry in MIXINS:
    _export_mixin(*_entry)
for _entry in CLASSES:
    _export_class(*_entry)
del _entry
