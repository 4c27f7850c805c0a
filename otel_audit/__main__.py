"""``python -m otel_audit``: the ``otel-audit`` command."""

import sys

from .cli import main

sys.exit(main())
