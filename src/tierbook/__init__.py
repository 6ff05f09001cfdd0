"""Tierbook: customer tiering (客户分层管理) analysis and reporting template.

One module per stage: ``params`` (merge and validate), ``ingest`` (read and map sources),
``clean`` (rules and reconciliation), ``data`` (the data stage), ``demo`` (the demo client),
``report`` (runs, manifest, latest), ``html`` (offline stakeholder HTML), ``tables`` and ``plots``
(display only), ``pipeline`` (the list of sections).
"""

__version__ = "0.1.0"

import pandas as _pd

# Text columns (``astype("string")``) are held by Arrow, not as one Python object per value: the
# strings of a 7M-line export take a fraction of the memory and their comparisons, hashing and
# string functions run in C++ (pandas' own default from pandas 3).
_pd.set_option("mode.string_storage", "pyarrow")
