"""A module imported on first use, for the modules the report's runner imports (``params`` through ``contract``): the
runner reads params and waits for the sections, and imports no pandas or numpy to do so (``report``)."""

from __future__ import annotations

import importlib


class Imported:
    """Stands for the module ``name`` in the module ``namespace`` (its ``globals()``) under ``alias`` until an attribute
    is first asked of it: the module is then imported and takes its place there."""

    def __init__(self, name: str, namespace: dict, alias: str):
        self._name, self._namespace, self._alias = name, namespace, alias

    def __getattr__(self, attribute: str):
        module = importlib.import_module(self._name)
        self._namespace[self._alias] = module
        return getattr(module, attribute)
