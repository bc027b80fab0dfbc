"""``python -m ktrdr.worker.forkserver_main THREADS FD LOG_LEVEL``: a forkserver process
(``ktrdr.worker.forkserver.serve``), in a module the package does not import, so that running
it as ``__main__`` does not load a second copy of ``forkserver``."""

from __future__ import annotations

import socket
import sys

from ktrdr.worker.forkserver import serve

if __name__ == "__main__":
    _threads, _fd, _level = (int(arg) for arg in sys.argv[1:4])
    serve(_threads, socket.socket(fileno=_fd), _level)
