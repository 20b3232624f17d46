"""mmcv without its compiled ops: a stand-in for ``mmcv._ext`` that names the op a model calls.

The harness's models and transforms call none of mmcv's compiled ops (``tests/integration/
test_without_mmcv_ops.py`` runs every preset's model and pipeline with the ops absent), but mmseg
1.2 imports ``mmcv.ops`` at import time, and ``mmcv.ops`` loads ``mmcv._ext``, the compiled
library, which an mmcv built without ops (``MMCV_WITH_OPS=0``, mmcv-lite) does not have.

``install()`` appends a finder to the END of ``sys.meta_path``: Python asks it only after every
real finder has failed to find ``mmcv._ext``, so an mmcv built with ops always loads its own
library, and this changes nothing for it. Otherwise the stand-in module answers every attribute
with a function that raises ``MissingMmcvOp``: one line naming the op and how to build mmcv with
its ops. Imports succeed; only a call of a missing op fails.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import types

from benchmark.errors import UsageError

MODULE = "mmcv._ext"
# how to get the ops (the README's "Why mmcv without its compiled ops" says more); the whole
# message stays under 300 characters for every op of mmcv 2.1.0, what a failed run's line keeps
BUILD_WITH_OPS = ("pip uninstall -y mmcv mmcv-lite && MMCV_WITH_OPS=1 pip install --no-build-isolation mmcv==2.1.0 "
                  "(needs torch, setuptools<81; see README)")


calls: list[str] = []  # the ops this process called on the stand-in, in order (what a test checks is empty)


class MissingMmcvOp(UsageError):
    """A model called a compiled mmcv op, and this mmcv was installed without ops."""


def _missing(name: str):
    def op(*args, **kwargs):
        calls.append(name)
        raise MissingMmcvOp(f"mmcv op {name!r} is missing: this mmcv has no compiled ops (the harness's "
                            f"models call none); to run this model, build them: {BUILD_WITH_OPS}")

    op.__name__ = op.__qualname__ = name
    return op


class _StandInModule(types.ModuleType):
    """``mmcv._ext`` of an mmcv without ops: every op is there, and raises when called."""

    without_ops = True

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return _missing(name)


class _Loader(importlib.abc.Loader):
    def create_module(self, spec):
        return _StandInModule(spec.name)

    def exec_module(self, module) -> None:
        module.__doc__ = "stand-in for mmcv's compiled ops (mmcv installed without ops; see benchmark.runtime.mmcv_without_ops)"


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname != MODULE:
            return None
        return importlib.machinery.ModuleSpec(fullname, _Loader())


def install() -> None:
    """Let ``mmcv.ops`` import where mmcv has no compiled ops (idempotent; a real ``_ext`` wins)."""
    if not any(isinstance(finder, _Finder) for finder in sys.meta_path):
        sys.meta_path.append(_Finder())


def has_compiled_ops() -> bool:
    """Whether the mmcv of this process loaded its own compiled ops (imports mmcv.ops)."""
    import mmcv.ops  # noqa: F401

    return not getattr(sys.modules.get(MODULE), "without_ops", False)
