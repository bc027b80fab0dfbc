"""Which device names a service checks without asking the machine (no probe process)."""

from __future__ import annotations

import pytest

from ktrdr.training.device import DeviceInventory, present_everywhere


@pytest.mark.parametrize("name", ["cpu", "auto", "", " CPU ", "Auto"])
def test_cpu_and_auto_are_on_every_machine(name: str):
    assert present_everywhere(name)
    # and they resolve on a machine with nothing but a CPU
    assert DeviceInventory().resolve(name).type == "cpu"


@pytest.mark.parametrize("name", ["cuda", "cuda:0", "cuda:99", "mps", "tpu", "cpu:0"])
def test_other_names_are_for_the_machine_to_answer(name: str):
    assert not present_everywhere(name)
