"""The chaos soak's plan: which faults, when, for how long, and which trainings, from one seed.

Pure (no processes, no I/O), so the plan of a seed can be printed and checked on its own. The
faults come in rounds: each round is every fault kind once, in an order the seed shuffles, so a
short run still meets each kind. Gaps, durations and targets are drawn from the same RNG. The
trainings have a RNG of their own (derived from the seed), so changing the fault kinds does not
change the workload of a seed.
"""

from __future__ import annotations

import os
import random
import secrets
from dataclasses import dataclass

KILL_HOST = "kill_host"
KILL_BACKEND = "kill_backend"
HOLD_SLOTS = "hold_slots"
LOCK_DB = "lock_db"
FILL_DISK = "fill_disk"
ROTATE_TOKEN = "rotate_token"
FAULT_KINDS = (KILL_HOST, KILL_BACKEND, HOLD_SLOTS, LOCK_DB, FILL_DISK, ROTATE_TOKEN)

# How long each fault lasts, in seconds (for the kills: how long the process stays dead).
DURATIONS_S = {
    KILL_HOST: (0.5, 3.0),
    KILL_BACKEND: (0.5, 3.0),
    HOLD_SLOTS: (3.0, 8.0),
    LOCK_DB: (2.0, 6.0),
    FILL_DISK: (2.0, 6.0),
    ROTATE_TOKEN: (0.0, 0.0),
}


@dataclass(frozen=True)
class Profile:
    """How long the soak injects faults and creates trainings, and how often."""

    name: str
    seconds: float
    fault_gap_s: tuple[float, float]
    training_gap_s: tuple[float, float]


PROFILES = {
    "short": Profile("short", 90.0, (2.0, 6.0), (4.0, 9.0)),
    "full": Profile("full", 300.0, (2.0, 8.0), (3.0, 8.0)),
}


@dataclass(frozen=True)
class Fault:
    """One fault: ``at_s`` after the soak starts; ``target`` is the host killed (0 or 1)."""

    at_s: float
    kind: str
    duration_s: float
    target: int = 0

    def describe(self) -> str:
        what = f"{self.kind}[host{self.target}]" if self.kind == KILL_HOST else self.kind
        return f"t={self.at_s:6.1f}s {what} for {self.duration_s:.1f}s"


@dataclass(frozen=True)
class Training:
    """One training to create ``at_s`` after the start: ``mode`` "local" or "host"."""

    at_s: float
    mode: str
    seed: int


def seed_from_env() -> int:
    """``KTRDR_CHAOS_SEED``, or a fresh random seed (always printed by the soak)."""
    raw = os.environ.get("KTRDR_CHAOS_SEED", "").strip()
    if not raw:
        return secrets.randbelow(10**9)
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"KTRDR_CHAOS_SEED={raw!r} is not an integer") from None


def profile_from_env() -> Profile:
    """``KTRDR_CHAOS_PROFILE`` (short or full, default full), its length replaced by
    ``KTRDR_CHAOS_SECONDS`` when set."""
    name = os.environ.get("KTRDR_CHAOS_PROFILE", "full").strip() or "full"
    if name not in PROFILES:
        raise ValueError(f"KTRDR_CHAOS_PROFILE={name!r}: one of {', '.join(PROFILES)}")
    profile = PROFILES[name]
    raw = os.environ.get("KTRDR_CHAOS_SECONDS", "").strip()
    if raw:
        try:
            seconds = float(raw)
        except ValueError:
            raise ValueError(f"KTRDR_CHAOS_SECONDS={raw!r} is not a number") from None
        if seconds <= 0:
            raise ValueError(f"KTRDR_CHAOS_SECONDS={raw!r} must be above 0")
        profile = Profile(profile.name, seconds, profile.fault_gap_s, profile.training_gap_s)
    return profile


def fault_plan(seed: int, profile: Profile, kinds: tuple[str, ...] = FAULT_KINDS) -> list[Fault]:
    """The faults of ``seed``: rounds of every kind in ``kinds``, until ``profile.seconds``."""
    rng = random.Random(seed)
    faults: list[Fault] = []
    at = rng.uniform(*profile.fault_gap_s)
    while True:
        deck = list(kinds)
        rng.shuffle(deck)
        for kind in deck:
            low, high = DURATIONS_S[kind]
            duration = round(rng.uniform(low, high), 1)
            target = rng.randrange(2)
            if at + duration > profile.seconds:
                return faults
            faults.append(Fault(round(at, 1), kind, duration, target))
            at += duration + rng.uniform(*profile.fault_gap_s)


def training_plan(seed: int, profile: Profile) -> list[Training]:
    """The trainings of ``seed``: local or host mode at random gaps, until ``profile.seconds``."""
    rng = random.Random(f"trainings-{seed}")
    out: list[Training] = []
    at = 0.5
    while at < profile.seconds:
        mode = rng.choice(("local", "host", "host"))  # two hosts, one local slot
        out.append(Training(round(at, 1), mode, rng.randrange(1000)))
        at += rng.uniform(*profile.training_gap_s)
    return out
