"""``replace_file``: a file's next version under a unique hidden sibling, renamed over it.

The writers that use it (the long CSV, the graph exports) leave a user's own ``NAME.tmp`` beside
their output alone, and leave no file of their own behind, written or failed.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

import networkx as nx
import pytest

from taskgraph.affinity.graph import graph_from_edges, write_graph
from taskgraph.affinity.longtable import LongRow, read_long_csv, write_long_csv
from taskgraph.files import replace_file, temporary_sibling

USER_BYTES = b"the user's own file\n"


def _listing(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in folder.iterdir()}


@pytest.fixture
def umask_027() -> Iterator[None]:
    previous = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(previous)


def test_the_new_version_replaces_the_file(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")
    replace_file(target, lambda temporary: temporary.write_text("new"))
    assert _listing(tmp_path) == {"out.txt": b"new"}


@pytest.mark.parametrize("error", [ValueError("bad"), KeyboardInterrupt()])
def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(
    tmp_path: Path, error: BaseException
) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")

    def write(temporary: Path) -> None:
        temporary.write_text("half")
        raise error

    with pytest.raises(type(error)):
        replace_file(target, write)
    assert _listing(tmp_path) == {"out.txt": b"old"}


def test_a_failed_rename_leaves_no_temporary_file(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()  # a directory in the file's place: the rename fails
    with pytest.raises(IsADirectoryError):
        replace_file(tmp_path / "out", lambda temporary: temporary.write_text("new"))
    assert [path.name for path in tmp_path.iterdir()] == ["out"]


def test_a_failed_removal_does_not_hide_the_writes_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(self: Path, missing_ok: bool = False) -> None:
        raise PermissionError(13, "Permission denied")

    def write(temporary: Path) -> None:
        monkeypatch.setattr(Path, "unlink", refuse)
        raise ValueError("the write's own error")

    with pytest.raises(ValueError, match="the write's own error"):
        replace_file(tmp_path / "out.txt", write)


def test_the_old_files_permissions_are_kept(tmp_path: Path, umask_027: None) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")
    target.chmod(0o604)
    replace_file(target, lambda temporary: temporary.write_text("new"))
    assert target.stat().st_mode & 0o777 == 0o604


def test_a_new_file_gets_the_umasks_default(tmp_path: Path, umask_027: None) -> None:
    target = tmp_path / "out.txt"
    replace_file(target, lambda temporary: temporary.write_text("new"))
    assert target.stat().st_mode & 0o777 == 0o640  # not mkstemp's 0600


def test_a_read_only_file_is_replaced_and_stays_read_only(tmp_path: Path) -> None:
    # ``write`` opens the temporary file by name, which a non-root user could not do with a
    # 0444 file's mode on it: it is writable while written, the old mode is put on before
    # the rename.  (The suite runs as root, which opens it anyway: the mode is read here.)
    target = tmp_path / "out.txt"
    target.write_text("old")
    target.chmod(0o444)
    seen: list[int] = []

    def write(temporary: Path) -> None:
        seen.append(stat.S_IMODE(temporary.stat().st_mode))
        temporary.write_text("new")

    replace_file(target, write)
    assert seen == [0o644] and stat.S_IMODE(target.stat().st_mode) == 0o444
    assert _listing(tmp_path) == {"out.txt": b"new"}


def test_the_umask_is_never_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Setting it to read it would give other threads' new files the mode 0666 meanwhile.
    def refuse(mask: int) -> int:
        raise AssertionError("os.umask called")

    monkeypatch.setattr(os, "umask", refuse)
    replace_file(tmp_path / "new.txt", lambda temporary: temporary.write_text("new"))
    assert (tmp_path / "new.txt").read_text() == "new"


def test_no_free_temporary_name_is_said(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(secrets, "token_hex", lambda n: "same")
    (tmp_path / ".out.txt.same.tmp").write_text("taken")
    with pytest.raises(FileExistsError, match="no free temporary name beside"):
        temporary_sibling(tmp_path / "out.txt")


def test_the_temporary_file_is_hidden_beside_the_file_and_ends_in_the_suffix(
    tmp_path: Path,
) -> None:
    seen: list[Path] = []
    target = tmp_path / "graph.png"
    replace_file(target, lambda temporary: seen.append(temporary), suffix=".tmp.png")
    (temporary,) = seen
    assert temporary.parent == tmp_path and temporary.name.startswith(".graph.png.")
    assert temporary.name.endswith(".tmp.png") and temporary.name != ".graph.png..tmp.png"
    replace_file(target, lambda temporary: seen.append(temporary))
    assert seen[1].name.endswith(".tmp") and not seen[1].name.endswith(".png.tmp")


def test_two_writers_of_one_file_never_share_a_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"

    def outer(temporary: Path) -> None:
        temporary.write_text("outer")
        replace_file(target, lambda inner: inner.write_text("inner"))  # another writer, meanwhile
        assert temporary.read_text() == "outer"

    replace_file(target, outer)
    assert _listing(tmp_path) == {"out.txt": b"outer"}


def test_a_folder_that_takes_no_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="takes no new file"):
        temporary_sibling(tmp_path / "missing" / "out.txt")


ROW = LongRow(target="a", task_set=frozenset({"a"}), split="val", value=0.5, higher_is_better=True)


def test_write_long_csv_leaves_a_users_tmp_file_alone(tmp_path: Path) -> None:
    (tmp_path / "t.csv.tmp").write_bytes(USER_BYTES)
    assert write_long_csv([ROW], tmp_path / "t.csv") == 1
    assert read_long_csv(tmp_path / "t.csv").rows == [ROW]
    assert sorted(_listing(tmp_path)) == ["t.csv", "t.csv.tmp"]
    assert (tmp_path / "t.csv.tmp").read_bytes() == USER_BYTES


def test_write_long_csv_that_fails_leaves_the_folder_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "t.csv").write_bytes(b"old\n")
    (tmp_path / "t.csv.tmp").write_bytes(USER_BYTES)
    before = _listing(tmp_path)
    monkeypatch.setattr(os, "replace", _refuse)
    with pytest.raises(PermissionError):
        write_long_csv([ROW], tmp_path / "t.csv")
    assert _listing(tmp_path) == before


def _refuse(source: object, target: object) -> None:
    raise PermissionError(13, "Permission denied")


@pytest.fixture(scope="module")
def graph() -> nx.DiGraph:
    edges = [
        {"source": "a", "target": "b", "gain": 0.1, "std": 0.01, "n_evidence": 2},
        {"source": "b", "target": "a", "gain": -0.05, "std": 0.02, "n_evidence": 1},
    ]
    return graph_from_edges(edges, method="hoa")


# The names the writer used before: ``NAME.tmp``, and ``NAME.tmp.png`` for a PNG.
@pytest.mark.parametrize(
    ("name", "users"), [("g.json", ["g.json.tmp"]), ("g.png", ["g.png.tmp", "g.png.tmp.png"])]
)
def test_write_graph_leaves_a_users_tmp_file_alone(
    graph: nx.DiGraph, tmp_path: Path, name: str, users: list[str]
) -> None:
    for user in users:
        (tmp_path / user).write_bytes(USER_BYTES)
    write_graph(graph, tmp_path / name)
    after = _listing(tmp_path)
    assert sorted(after) == sorted([name, *users])
    assert all(after[user] == USER_BYTES for user in users)
    assert after[name] != USER_BYTES
    if name.endswith(".png"):
        assert after[name][:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("name", "users"), [("g.json", ["g.json.tmp"]), ("g.png", ["g.png.tmp.png"])]
)
def test_write_graph_that_fails_leaves_the_folder_as_it_was(
    graph: nx.DiGraph, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, users: list[str]
) -> None:
    (tmp_path / name).write_bytes(b"old")
    for user in users:
        (tmp_path / user).write_bytes(USER_BYTES)
    before = _listing(tmp_path)
    monkeypatch.setattr(os, "replace", _refuse)
    with pytest.raises(PermissionError):
        write_graph(graph, tmp_path / name)
    assert _listing(tmp_path) == before
