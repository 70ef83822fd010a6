"""The ``taskgraph`` command line: one module per command group, assembled in :mod:`.app`."""

from __future__ import annotations
