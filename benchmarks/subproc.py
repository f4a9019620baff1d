"""Child processes of the suite: bounded in time, with their error output kept on failure."""

from __future__ import annotations

import subprocess


def run_checked(command: list[str], timeout_s: float, env: dict[str, str] | None = None) -> str:
    """Run `command`; its stdout, or a RuntimeError carrying the end of its stderr."""
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout_s, check=False, env=env
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command[:4])} ... exited {done.returncode}:\n{done.stderr[-3000:]}"
        )
    return done.stdout
