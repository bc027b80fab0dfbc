"""What the backend tells the outside about its work: MLflow runs and Prometheus metrics.

``mlflow_runs`` makes every finished operation an MLflow run (a spool and one background
thread; off unless a tracking URI is set), ``sweeps`` makes a sweep a parent run of its trials'
runs. ``events`` is the lifecycle's one narrow interface to metrics (a no-op by default) and
``metrics`` its Prometheus implementation (on when a metrics address is set). Nothing is
imported here: MLflow and prometheus_client load only when their feature is on.
"""
