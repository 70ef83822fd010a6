"""The ``taskgraph`` command line: one module per command group (``study`` a package of one module
per command), assembled in :mod:`.app`."""

from __future__ import annotations
