"""The public surface: every exported name has a docstring, and the type stubs describe
exactly what the native module exports (classes, their methods and properties)."""

import ast
import inspect
import pathlib

import dupify
from dupify import _dupify

STUB = pathlib.Path(dupify.__file__).with_name("_dupify.pyi")


def _public(names):
    return {n for n in names if not n.startswith("_")}


def test_every_public_name_has_a_docstring():
    missing = []
    for name in dupify.__all__:
        if name == "__version__":
            continue
        obj = getattr(dupify, name)
        if not (obj.__doc__ or "").strip():
            missing.append(name)
        if inspect.isclass(obj) and obj.__module__ == "dupify":
            for attr in _public(vars(obj)):
                if not (getattr(obj, attr).__doc__ or "").strip():
                    missing.append(f"{name}.{attr}")
    assert not missing, f"no docstring: {missing}"


def test_stubs_match_the_native_module():
    tree = ast.parse(STUB.read_text())
    # Keyword-argument TypedDicts (``_SearchArgs``…) are for type checkers only.
    stub_classes = {
        n.name: n for n in tree.body if isinstance(n, ast.ClassDef) and not n.name.startswith("_")
    }
    stub_funcs = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    native_classes = {n for n in _public(dir(_dupify)) if inspect.isclass(getattr(_dupify, n))}
    native_funcs = _public(dir(_dupify)) - native_classes
    assert set(stub_classes) == native_classes
    assert stub_funcs == native_funcs
    for name, node in stub_classes.items():
        stub_members = _public(
            f.name for f in node.body if isinstance(f, ast.FunctionDef)
        )
        native_members = _public(vars(getattr(_dupify, name)))
        assert stub_members == native_members, name


def test_py_typed_marker_and_exports():
    assert STUB.with_name("py.typed").is_file()
    for name in dupify.__all__:
        assert hasattr(dupify, name), name
    exported_errors = {n for n in dupify.__all__ if n.endswith("Error")}
    assert exported_errors == set(dupify.errors.__all__)
