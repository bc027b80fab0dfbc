"""Where a training runs: the hosts this backend may use and how work reaches them.

``registry`` keeps the hosts that registered themselves (``RegisterHost`` / ``HostHeartbeat``)
beside the static ``--host-address`` list and says which addresses placement may use now;
``host_rpcs`` serves those RPCs and ``ListHosts``. The mode selector, placement, the host
queue and the runners still live beside this package (``ktrdr.backend.mode_selector`` etc.)
and move here later. Modules here may import ``ktrdr.backend`` leaf modules (errors, store,
mode_selector) and the generated contract; nothing here imports the servicer or the server.
"""

from ktrdr.backend.execution.registry import HostRegistry, RegisteredHost

__all__ = ["HostRegistry", "RegisteredHost"]
