"""Where a training runs: the hosts this backend may use and how work reaches them.

- ``mode_selector``: local, host or auto per request, from the health of the hosts it knows;
- ``placement``: the rule that picks a host for a run, and ``host_queue``: runs waiting for a
  host slot (bounded);
- ``local_runner`` and ``host_runner``: a run in a backend worker process, or on a host with
  its progress streamed back; ``host_operations`` ties queue, placement and runners together;
- ``registry``: the hosts that registered themselves (``RegisterHost`` / ``HostHeartbeat``)
  beside the static ``--host-address`` list; ``host_rpcs`` serves those RPCs and ``ListHosts``.

Modules here may import ``ktrdr.backend`` leaf modules (errors, store, records, live) and the
generated contract; nothing here imports the servicer or the server.
"""

from ktrdr.backend.execution.registry import HostRegistry, RegisteredHost

__all__ = ["HostRegistry", "RegisteredHost"]
