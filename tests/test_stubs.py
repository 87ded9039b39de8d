"""src/cxxloop/_core.pyi against the built extension: every name the module
exports, and every method and attribute of its types, is in the stub, and
a method's parameters are those the stub gives it. A C++ method added
without its stub fails here, by name."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from cxxloop import _core

STUB = Path(__file__).resolve().parent.parent / "src" / "cxxloop" / "_core.pyi"
# What every type has without defining it.
IMPLICIT = {"__doc__", "__module__"}
# Declaring __setattr__ would make mypy accept any attribute set on a loop;
# CoreLoop's keeps object's behaviour (it notes a replaced `time`).
NOT_DECLARED = {"CoreLoop": {"__setattr__", "__delattr__"}}


def _is_type_check_only(node: ast.ClassDef) -> bool:
    return any(isinstance(d, ast.Name) and d.id == "type_check_only" for d in node.decorator_list)


def _members(body: list[ast.stmt]) -> dict[str, ast.stmt]:
    found: dict[str, ast.stmt] = {}
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            found[node.name] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            found[node.target.id] = node
        elif isinstance(node, ast.Assign):
            found.update((t.id, node) for t in node.targets if isinstance(t, ast.Name))
    return found


def _parse():
    tree = ast.parse(STUB.read_text(), str(STUB))
    top = _members(tree.body)
    classes = {name: node for name, node in top.items() if isinstance(node, ast.ClassDef)}

    def class_members(node: ast.ClassDef) -> dict[str, ast.stmt]:
        """The class's own members and those of its bases defined in the stub."""
        found: dict[str, ast.stmt] = {}
        for base in reversed(node.bases):
            if isinstance(base, ast.Name) and base.id in classes:
                found.update(class_members(classes[base.id]))
        found.update(_members(node.body))
        return found

    # TypeVars and the stub-only classes exist for the type checker only.
    runtime_top = {
        name for name, node in top.items()
        if not (isinstance(node, ast.ClassDef) and _is_type_check_only(node))
        and not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call))
    }
    members = {name: class_members(node) for name, node in classes.items() if name in runtime_top}
    return runtime_top, members


STUB_NAMES, STUB_MEMBERS = _parse()
TYPES = sorted(name for name, value in vars(_core).items() if isinstance(value, type))


def test_every_module_name_is_in_the_stub():
    exported = {name for name in vars(_core) if not (name.startswith("__") and name.endswith("__"))}
    assert exported - STUB_NAMES == set(), "exported by _core, missing from _core.pyi"
    assert STUB_NAMES - exported == set(), "in _core.pyi, not exported by _core"


@pytest.mark.parametrize("name", TYPES)
def test_every_member_of_the_type_is_in_the_stub(name):
    defined = set(vars(getattr(_core, name))) - IMPLICIT - NOT_DECLARED.get(name, set())
    assert defined - set(STUB_MEMBERS[name]) == set(), f"defined by _core.{name}, missing from its stub"


@pytest.mark.parametrize("name", TYPES)
def test_every_member_of_the_stub_exists(name):
    cls = getattr(_core, name)
    missing = {m for m in STUB_MEMBERS[name] if not hasattr(cls, m)}
    assert missing == set(), f"in the stub of {name}, not on _core.{name}"


def _stub_parameters(node: ast.FunctionDef) -> list[tuple[inspect._ParameterKind, str | None, bool]]:
    """(kind, name, has a default) of each parameter after self; no name
    for positional-only ones, whose names nothing can see."""
    a = node.args
    positional = [(p, inspect.Parameter.POSITIONAL_ONLY) for p in a.posonlyargs]
    positional += [(p, inspect.Parameter.POSITIONAL_OR_KEYWORD) for p in a.args]
    defaults = [False] * (len(positional) - len(a.defaults)) + [True] * len(a.defaults)
    out = [(kind, None if kind == inspect.Parameter.POSITIONAL_ONLY else p.arg, d)
           for (p, kind), d in zip(positional, defaults, strict=True)][1:]  # self
    if a.vararg:
        out.append((inspect.Parameter.VAR_POSITIONAL, a.vararg.arg, False))
    out += [(inspect.Parameter.KEYWORD_ONLY, p.arg, d is not None) for p, d in zip(a.kwonlyargs, a.kw_defaults,
                                                                                   strict=True)]
    if a.kwarg:
        out.append((inspect.Parameter.VAR_KEYWORD, a.kwarg.arg, False))
    return out


def _runtime_parameters(sig: inspect.Signature) -> list[tuple[inspect._ParameterKind, str | None, bool]]:
    return [(p.kind, None if p.kind == p.POSITIONAL_ONLY else p.name, p.default is not p.empty)
            for p in list(sig.parameters.values())[1:]]


def _signed_methods():
    """(type, method) of each stubbed method whose C++ definition gives its signature."""
    for name in TYPES:
        cls = getattr(_core, name)
        for member, node in STUB_MEMBERS[name].items():
            # A slot's (__new__, __call__) signature is the generic (*args, **kwargs).
            if not isinstance(node, ast.FunctionDef) or member not in vars(cls) or member.startswith("__"):
                continue
            try:
                inspect.signature(vars(cls)[member])
            except (TypeError, ValueError):
                continue  # no __text_signature__: parsed by hand in C++
            yield pytest.param(name, member, id=f"{name}.{member}")


@pytest.mark.parametrize(("name", "member"), list(_signed_methods()))
def test_a_method_takes_the_parameters_its_stub_gives(name, member):
    runtime = _runtime_parameters(inspect.signature(vars(getattr(_core, name))[member]))
    assert _stub_parameters(STUB_MEMBERS[name][member]) == runtime
