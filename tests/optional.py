"""The suite's optional dependencies, the packages of the test-integrations
extra: a test that needs one skips without it and says where it comes from."""

import pytest


def require(module: str):
    """Import `module`, or skip the test (or, at import time, the module)."""
    return pytest.importorskip(
        module, reason=f"{module} is not installed; it comes with the test-integrations extra"
    )
