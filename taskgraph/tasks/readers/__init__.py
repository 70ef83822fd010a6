"""File readers, looked up by format name: ``conllu``, ``iob``, ``squad``, ``tsv``.

A reader is a :class:`Reader`: it checks a task's options (:meth:`Reader.check`) and streams
the :class:`Record` objects of one file (:meth:`Reader.read`).  New formats register here.
"""

from __future__ import annotations

from taskgraph.registry import Registry
from taskgraph.tasks.readers.base import Reader, Record

__all__ = ["READERS", "Reader", "Record", "get_reader"]

READERS: Registry[Reader] = Registry(kind="task format")
READERS.register("conllu", "taskgraph.tasks.readers.conllu:CONLLU")
READERS.register("iob", "taskgraph.tasks.readers.iob:IOB")
READERS.register("squad", "taskgraph.tasks.readers.squad:SQUAD")
READERS.register("tsv", "taskgraph.tasks.readers.tsv:TSV")


def get_reader(format_name: str) -> Reader:
    """Return the reader registered for ``format_name`` (UnknownNameError lists the formats)."""
    return READERS.get(format_name)
