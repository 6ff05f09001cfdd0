"""The one exception type for problems a consultant can fix (bad params, bad input files).

Raised with a single line that names the file, the column or row, the problem and the fix.
The CLI catches it once and prints the line; a notebook that raises it shows the line, never a
traceback, in the report's failure summary.
"""


class TierbookError(Exception):
    """A user-facing problem with params or input data; the message is one line."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


class UpstreamFailed(TierbookError):
    """Raised by a section whose stage waited for another section's outputs (``pipeline.wait_for``) and learnt that
    section failed: the runner reports the section ``skipped``, as it reports one whose dependency failed before it
    started."""
