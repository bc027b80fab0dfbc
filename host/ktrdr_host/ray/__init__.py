"""Ray mode: the host's sessions as Ray tasks on a cluster.

``cluster`` joins the cluster and admits sessions (``RayCluster``), ``executor`` runs one
session as a Ray task (``RayExecutor``), ``task`` is the cluster's side (the task body and the
progress relay actor), ``folds`` trains a session's walk-forward folds as Ray tasks of their
own, ``local_cluster`` starts a cluster of local processes on loopback for tests, benchmarks
and trying Ray mode. Nothing is imported here, so ``ktrdr_host`` and this package import
without Ray installed; Ray itself is imported only by ``cluster`` and the modules it loads.
"""
