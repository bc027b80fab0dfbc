"""Who may call what on the backend: roles, the RPC -> roles table, and the token store.

``roles`` holds the policy (viewer < trainer < admin, and ``host`` for SubmitResults);
``token_store`` keeps named tokens (hashed) in the backend's SQLite database and creates the
first local admin and host tokens. May import ``ktrdr.security`` and the generated protos.
"""

from ktrdr.backend.auth.roles import ROLES, backend_policy, may_act_on_any_operation
from ktrdr.backend.auth.token_store import TokenInfo, TokenStore, bootstrap_local_tokens

__all__ = [
    "ROLES",
    "TokenInfo",
    "TokenStore",
    "backend_policy",
    "bootstrap_local_tokens",
    "may_act_on_any_operation",
]
