"""The chaos soak (README "Chaos test"): trainings in local mode and on two hosts while faults
are injected at moments drawn from a seed, then the invariants of ``tests/chaos/invariants.py``
and health p99 under 500 ms on every service.

``make chaos`` (5 minutes of faults) or ``make chaos-short`` (90 s, run by CI); the seed comes
from ``KTRDR_CHAOS_SEED`` (random when unset) and is printed first and in any failure message.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from pathlib import Path

import pytest

from tests.chaos.cluster import BACKEND, Cluster, Disk, host_name
from tests.chaos.faults import FaultInjector
from tests.chaos.health import P99_LIMIT_S, HealthProber, HealthReport
from tests.chaos.invariants import Findings, check, settle
from tests.chaos.schedule import (
    fault_plan,
    profile_from_env,
    seed_from_env,
    training_plan,
)
from tests.chaos.workload import Workload, strategy_yaml
from tests.support.processes import REPO_ROOT
from tests.support.timing import scaled

PROFILE = profile_from_env()
SETTLE_S = 240.0  # a bound on the services finishing what the soak left them, not a target

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(PROFILE.seconds + scaled(900))]


def test_chaos_soak(tmp_path: Path, sample_data_dir: Path, tiny_strategy_yaml: str) -> None:
    seed = seed_from_env()
    profile = PROFILE
    target = "chaos-short" if profile.name == "short" else "chaos"
    reproduce = f"KTRDR_CHAOS_SEED={seed} KTRDR_CHAOS_SECONDS={profile.seconds:g} make {target}"
    say(f"seed {seed}, profile {profile.name}, {profile.seconds:g} s; reproduce: {reproduce}")
    faults = fault_plan(seed, profile)
    trainings = training_plan(seed, profile)
    say(f"plan: {len(trainings)} trainings, {len(faults)} faults:")
    for fault in faults:
        say(f"  {fault.describe()}")

    disk = Disk.mount(tmp_path / "disk")
    if not disk.mounted:
        say(f"full-disk fault SKIPPED: cannot mount a tmpfs here ({disk.why_not})")
    cluster = Cluster(tmp_path, disk, sample_data_dir)
    violations: list[str] = []
    # Every clean-up step runs even when one before it fails (the last registered runs first):
    # the threads stop, then the services (by pid), then the tmpfs is unmounted.
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(disk.unmount)
        cleanup.callback(cluster.stop)
        cluster.start()
        start = time.monotonic()
        probers = [HealthProber(BACKEND, cluster.backend_address, tmp_path)] + [
            HealthProber(host_name(i), cluster.host_address(i), tmp_path) for i in range(2)
        ]
        for prober in probers:
            prober.start()
            cleanup.callback(stop_thread, prober)
        injector = FaultInjector(cluster, faults, start)
        workload = Workload(cluster, trainings, strategy_yaml(tiny_strategy_yaml), start)
        injector.start()
        cleanup.callback(stop_thread, injector)
        workload.start()
        cleanup.callback(stop_thread, workload)
        workload.join(profile.seconds + scaled(120))
        injector.join(profile.seconds + scaled(300))
        if injector.is_alive():
            violations.append("the fault injector did not finish its plan in time")
        if injector.error:
            violations.append(f"a fault could not be injected: {injector.error}")
        say(f"faults over at {time.monotonic() - start:.1f}s; settling")

        settled, took = settle(cluster, SETTLE_S)
        say(f"settled: {settled} after {took:.1f}s")
        scratch = tmp_path / "downloads"
        scratch.mkdir()
        found = check(cluster, workload.created, scratch)
        violations += found.violations
        for prober in probers:
            stop_thread(prober)
        reports = [p.report(cluster.down_windows(p.service), start) for p in probers]
        for report in reports:
            if report.p99_s >= P99_LIMIT_S:
                violations.append(
                    f"health p99 of {report.name} is {report.p99_s * 1000:.0f} ms "
                    f"(limit {P99_LIMIT_S * 1000:.0f} ms)"
                )
        summarize(seed, injector, workload, found, reports)
    kept = keep_logs(cluster, seed)
    say(f"the services' logs are kept in {kept}")
    if violations:
        for name, log in cluster.logs().items():
            tail = log.read_text(errors="replace").splitlines()[-40:] if log.exists() else []
            say(f"--- last lines of {name} log ({log}) ---")
            print("\n".join(tail), flush=True)
        problems = "\n".join(f"  - {v}" for v in violations)
        pytest.fail(
            f"chaos soak, seed {seed}: {len(violations)} invariant(s) broken:\n{problems}\n"
            f"reproduce: {reproduce}",
            pytrace=False,
        )


def keep_logs(cluster: Cluster, seed: int) -> Path:
    """Copy the services' logs out of pytest's temporary directory (other runs prune it) to
    ``KTRDR_CHAOS_LOG_DIR`` (default ``.chaos/``), one folder per run."""
    root = Path(os.environ.get("KTRDR_CHAOS_LOG_DIR", "") or REPO_ROOT / ".chaos")
    target = root / f"seed-{seed}-{time.strftime('%Y%m%d-%H%M%S')}"
    target.mkdir(parents=True, exist_ok=True)
    for name, log in cluster.logs().items():
        if log.exists():
            shutil.copyfile(log, target / f"{name}.log")
    return target


def stop_thread(thread: FaultInjector | Workload | HealthProber) -> None:
    """Ask a soak thread to stop and wait for it (bounded: a fault under way finishes first)."""
    thread.stop()
    thread.join(scaled(120))


def say(text: str) -> None:
    print(f"[chaos] {text}", flush=True)


def summarize(
    seed: int,
    injector: FaultInjector,
    workload: Workload,
    found: Findings,
    reports: list[HealthReport],
) -> None:
    say(f"=== summary, seed {seed} ===")
    say("faults injected:")
    for record in injector.records:
        say(f"  {record.describe()}")
    say(
        f"trainings created: {len(workload.created)}; creation attempts answered with an "
        f"error: {dict(workload.retried) or 'none'}; given up: {dict(workload.refused) or 'none'}"
    )
    for code, example in workload.refusal_examples.items():
        say(f"  e.g. {code}: {example[:160]}")
    say(f"operations by state: {dict(sorted(found.by_status.items()))}")
    say(f"operations by mode and state: {dict(sorted(found.by_mode.items()))}")
    say(f"models downloaded and verified: {found.models_checked}; parked in spools: {found.parked}")
    for cause, count in found.causes.most_common():
        say(f"  {count} x {cause}")
    say("health:")
    for report in reports:
        say(f"  {report.describe()}")
