"""Storage faults of a SQLite study: its filesystem full, or its directory read-only.

Each fills or remounts a small tmpfs (or, where none can be mounted, limits the file size or
changes the directory's mode), expects one ``error:`` line and a passing ``taskgraph db check``,
then ``study resume`` once the fault is lifted.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from .common import (
    Outcome,
    cluster_env,
    complete_trials,
    judge,
    one_error_line,
    taskgraph_run,
    write_spec,
)


def disk_full(work: Path, table: Path, *, budget: int) -> Outcome:
    """The SQLite file's filesystem full mid-study; ``db check``; resume once space is freed."""
    from taskgraph.testing import limit_file_size, small_filesystem

    name = "disk_full"
    spec = work / f"{name}.yaml"
    write_spec(spec, name=name, table=table, budget=budget, seeds=1, max_retry=3, seed=0)
    environment = cluster_env()
    with small_filesystem(work / "fs-full", size_kb=16384) as mounted:
        db = work / "fs-full" / f"{name}.db"
        url = f"sqlite:///{db}"
        taskgraph_run(
            ["study", "run", str(spec), "--storage", url, "--quiet", "--trials", "2"], environment
        )
        filler = db.with_name("filler")
        limit: int | None = None
        if mounted:
            stats = os.statvfs(db.parent)
            with filler.open("wb") as out:
                out.write(b"\0" * max(0, stats.f_bavail * stats.f_frsize - 256 * 1024))
            how = "a 16 MiB tmpfs filled to 256 KiB free"
        else:
            limit = max(p.stat().st_size for p in db.parent.glob(f"{name}.db*")) + 256 * 1024
            how = f"RLIMIT_FSIZE {limit} bytes"
        full = taskgraph_run(
            ["study", "resume", name, "--storage", url, "--quiet", "--trials", str(budget)],
            environment,
            preexec_fn=None if limit is None else (lambda: limit_file_size(limit)),
        )
        at = complete_trials(url)
        filler.unlink(missing_ok=True)
        check = taskgraph_run(["db", "check", "--storage", url], environment)
        resumed = taskgraph_run(["study", "resume", name, "--storage", url, "--quiet"], environment)
        clear, lines = one_error_line(full.returncode, full.stderr)
        detail = (
            f"{how}: exit {full.returncode} after trial {at}, {len(lines)} error line(s) "
            f"{lines[0][-150:] if lines else full.stderr[-200:]!r}; db check exited "
            f"{check.returncode}; resume exited {resumed.returncode}"
        )
        return judge(
            "disk-full",
            name,
            url,
            budget=budget,
            seeds=1,
            max_retry=3,
            detail=detail,
            ok=clear and check.returncode == 0 and resumed.returncode == 0 and 2 < at < budget,
        )


def readonly_dir(work: Path, table: Path, *, budget: int) -> Outcome:
    """The SQLite file's directory read-only: one error line; ``db check``; resume after."""
    from taskgraph.testing import small_filesystem

    name = "readonly_dir"
    spec = work / f"{name}.yaml"
    write_spec(spec, name=name, table=table, budget=budget, seeds=1, max_retry=3, seed=0)
    environment = cluster_env()
    directory = work / "fs-ro"
    with small_filesystem(directory, size_kb=16384) as mounted:
        url = f"sqlite:///{directory / f'{name}.db'}"
        taskgraph_run(
            ["study", "run", str(spec), "--storage", url, "--quiet", "--trials", "2"], environment
        )
        if mounted:
            subprocess.run(["mount", "-o", "remount,ro", str(directory)], check=True)
            how = "tmpfs remounted read-only"
        elif os.geteuid() != 0:
            directory.chmod(0o555)
            how = "chmod 555"
        else:
            return Outcome.not_injected(
                "readonly-dir", "root without a mountable tmpfs: skipped", max_retry=3
            )
        try:
            refused = taskgraph_run(
                ["study", "resume", name, "--storage", url, "--quiet"], environment
            )
        finally:
            if mounted:
                subprocess.run(["mount", "-o", "remount,rw", str(directory)], check=True)
            else:
                directory.chmod(0o755)
        check = taskgraph_run(["db", "check", "--storage", url], environment)
        resumed = taskgraph_run(
            ["study", "resume", name, "--storage", url, "--quiet", "--trials", str(budget)],
            environment,
        )
        clear, lines = one_error_line(refused.returncode, refused.stderr)
        detail = (
            f"{how}: exit {refused.returncode}, {len(lines)} error line(s) "
            f"{lines[0][-120:] if lines else refused.stderr[-200:]!r}; db check exited "
            f"{check.returncode}; resume exited {resumed.returncode}"
        )
        return judge(
            "readonly-dir",
            name,
            url,
            budget=budget,
            seeds=1,
            max_retry=3,
            detail=detail,
            ok=clear and check.returncode == 0 and resumed.returncode == 0,
        )
