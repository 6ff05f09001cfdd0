"""Tierbook: customer tiering (客户分层管理) analysis and reporting template.

One module per stage: ``params`` (merge and validate), ``ingest`` (read and map sources),
``clean`` (rules and reconciliation), ``data`` (the data stage), ``demo`` (the demo client),
``report`` (runs, manifest, latest), ``html`` (offline stakeholder HTML), ``tables`` and ``plots``
(display only), ``pipeline`` (the list of sections).
"""

__version__ = "0.1.0"
