"""The query engine's exceptions::

    QueryError
    ├── FilterError (a ValueError)   a filter value that cannot be used (bad time, outcome...)
    │   └── CursorError              a page cursor not made here, or for the other order
    ├── SourceError                  a source that cannot be opened (no such path, bad URL)
    │   └── BackendError             VictoriaLogs is unreachable or answered an error
    └── KeyFileError                 the pseudonymisation key cannot be read or is empty

Damaged archive lines are not exceptions: they are reported (``file:line``) and skipped.
"""

from __future__ import annotations


class QueryError(Exception):
    """Base of the query engine's errors; the message is one line."""


class FilterError(QueryError, ValueError):
    """A filter value that cannot be used; the message names the option and the value."""


class CursorError(FilterError):
    """A page cursor that this engine did not make, or one made for the other order."""


class SourceError(QueryError):
    """A source that cannot be opened: no such path, an unknown URL scheme."""


class BackendError(SourceError):
    """VictoriaLogs could not be reached, or answered an error."""


class KeyFileError(QueryError):
    """The pseudonymisation key could not be read, or is empty."""
