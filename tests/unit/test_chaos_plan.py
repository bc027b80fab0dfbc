"""The chaos soak's plan (tests/chaos/schedule.py): one seed, one plan; every fault kind in
each round; the settings read as documented."""

from __future__ import annotations

import pytest

from tests.chaos.schedule import (
    FAULT_KINDS,
    PROFILES,
    fault_plan,
    profile_from_env,
    seed_from_env,
    training_plan,
)


def test_a_seed_gives_the_same_plan_and_another_seed_another() -> None:
    short = PROFILES["short"]
    assert fault_plan(42, short) == fault_plan(42, short)
    assert training_plan(42, short) == training_plan(42, short)
    assert fault_plan(42, short) != fault_plan(43, short)


@pytest.mark.parametrize("seed", range(20))
def test_every_round_meets_every_fault_kind_within_the_length(seed: int) -> None:
    profile = PROFILES["short"]
    faults = fault_plan(seed, profile)
    kinds = [f.kind for f in faults]
    assert set(kinds[: len(FAULT_KINDS)]) == set(FAULT_KINDS)  # the short run meets them all
    assert all(f.at_s + f.duration_s <= profile.seconds for f in faults)
    assert [f.at_s for f in faults] == sorted(f.at_s for f in faults)
    assert all(f.target in (0, 1) for f in faults)
    trainings = training_plan(seed, profile)
    assert {t.mode for t in trainings} <= {"local", "host"}
    assert all(t.at_s < profile.seconds for t in trainings)


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KTRDR_CHAOS_SEED", "1234")
    assert seed_from_env() == 1234
    monkeypatch.setenv("KTRDR_CHAOS_SEED", "")
    assert isinstance(seed_from_env(), int)
    monkeypatch.setenv("KTRDR_CHAOS_SEED", "abc")
    with pytest.raises(ValueError, match="KTRDR_CHAOS_SEED"):
        seed_from_env()
    monkeypatch.setenv("KTRDR_CHAOS_PROFILE", "short")
    monkeypatch.setenv("KTRDR_CHAOS_SECONDS", "30")
    profile = profile_from_env()
    assert profile.name == "short" and profile.seconds == 30
    monkeypatch.delenv("KTRDR_CHAOS_PROFILE")
    monkeypatch.delenv("KTRDR_CHAOS_SECONDS")
    assert profile_from_env() == PROFILES["full"]
    monkeypatch.setenv("KTRDR_CHAOS_PROFILE", "long")
    with pytest.raises(ValueError, match="KTRDR_CHAOS_PROFILE"):
        profile_from_env()
