"""One exception type for problems the user can fix.

The CLI turns a :class:`BenchError` into a single line (``error: <what>; fix: <how>``)
instead of a traceback. Library code raises it for bad input, corrupt files and missing
data; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class BenchError(Exception):
    """A user-fixable problem: ``what`` went wrong and ``fix`` says how to repair it."""

    def __init__(self, what: str, fix: str | None = None):
        self.what = what
        self.fix = fix
        super().__init__(self.one_line())

    def one_line(self) -> str:
        return f"{self.what}; fix: {self.fix}" if self.fix else self.what
