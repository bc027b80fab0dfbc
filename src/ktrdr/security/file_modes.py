"""Private file modes for what the services keep: directories 0700, databases 0600.

The backend's database holds every strategy, owner and token hash, and its data directory the
models: nothing for other local users to read. A directory this code creates is made 0700 and
a database file 0600 before SQLite first opens it (no window in which it is readable). An
existing directory that others can read is left as the operator made it, with a warning; an
existing database file is narrowed to 0600, said in the log.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

logger = logging.getLogger(__name__)

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def private_directory(path: Path) -> Path:
    """Create ``path`` (and missing parents) as 0700; warn when an existing one is open."""
    path = Path(path)
    missing = [p for p in (path, *path.parents) if not p.exists()]
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    for created in missing:
        if created.exists():
            os.chmod(created, PRIVATE_DIR_MODE)  # mkdir's mode is filtered by the umask
    if path not in missing:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            logger.warning(
                "%s is readable by other users (mode %o); chmod 700 it to keep its contents "
                "private",
                path,
                mode,
            )
    return path


def private_database(path: Path) -> Path:
    """Make ``path``'s directory private and the database file (created empty if missing,
    which SQLite accepts as a new database) 0600; returns ``path``."""
    path = Path(path)
    private_directory(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            os.chmod(path, PRIVATE_FILE_MODE)
            logger.warning("%s was readable by other users (mode %o); now 0600", path, mode)
    else:
        os.close(fd)
    return path


__all__ = ["PRIVATE_DIR_MODE", "PRIVATE_FILE_MODE", "private_database", "private_directory"]
