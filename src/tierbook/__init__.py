"""Tierbook: customer tiering (客户分层管理) analysis and reporting template.

One module per stage: ``params`` (merge and validate), ``ingest`` (read and map sources),
``clean`` (rules and reconciliation), ``data`` (the data stage), ``demo`` (the demo client),
``report`` (runs, manifest, latest), ``html`` (offline stakeholder HTML), ``tables`` and ``plots``
(display only), ``pipeline`` (the list of sections).
"""

import importlib.abc as _abc
import sys as _sys

__version__ = "0.1.0"


# Text columns (``astype("string")``) are held by Arrow, not as one Python object per value: the strings of a 7M-line
# export take a fraction of the memory and their comparisons, hashing and string functions run in C++ (pandas' own
# default from pandas 3). Set when pandas is imported, not by importing it here: the report's runner (``make report``)
# imports no pandas at all and waits for the sections with 0.1 GiB less (``report``).
def _configure_pandas(pandas) -> None:
    pandas.set_option("mode.string_storage", "pyarrow")


class _PandasConfigured(_abc.MetaPathFinder, _abc.Loader):
    """Finds pandas as Python would (the finders after this one) and configures it once it has loaded."""

    def find_spec(self, name, path=None, target=None):
        if name != "pandas":
            return None
        spec = None
        for finder in _sys.meta_path:
            find = getattr(finder, "find_spec", None) if finder is not self else None
            spec = find(name, path, target) if find is not None else None
            if spec is not None:
                break
        if spec is None or spec.loader is None:
            return spec
        self._loader = spec.loader
        spec.loader = self
        return spec

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        if self in _sys.meta_path:
            _sys.meta_path.remove(self)
        # pandas as Python's own loader leaves it (its spec and __loader__ name that loader, not this finder)
        module.__spec__.loader = module.__loader__ = self._loader
        self._loader.exec_module(module)
        _configure_pandas(module)

    def __getattr__(self, name):  # anything else asked of the loader while pandas loads (its resources, its file)
        loader = self.__dict__.get("_loader")
        if loader is None:
            raise AttributeError(name)
        return getattr(loader, name)


if "pandas" in _sys.modules:
    _configure_pandas(_sys.modules["pandas"])
elif not any(isinstance(finder, _PandasConfigured) for finder in _sys.meta_path):
    _sys.meta_path.insert(0, _PandasConfigured())
