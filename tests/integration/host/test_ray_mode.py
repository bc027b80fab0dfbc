"""Nothing imports Ray unless Ray mode is on, and the host refuses Ray mode clearly without
Ray (child interpreters). The rest of Ray mode without a cluster:
``tests/unit/host/test_ray_mode.py``."""

from __future__ import annotations

import subprocess
import sys


def test_the_host_imports_and_refuses_ray_mode_clearly_without_ray() -> None:
    code = (
        "import sys\n"
        "sys.modules['ray'] = None  # as if Ray were not installed\n"
        "import ktrdr.cli.main, ktrdr.client, ktrdr_host.server, ktrdr_host.sessions\n"
        "from ktrdr_host.ray.cluster import RayCluster, RayUnavailable\n"
        "from ktrdr_host.settings import HostSettings\n"
        "try:\n"
        "    RayCluster(HostSettings(ray_address='auto')).connect()\n"
        "except RayUnavailable as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "pip install 'ktrdr[training,ray]'" in result.stdout


def test_ray_is_not_loaded_by_the_host_or_clients() -> None:
    code = (
        "import sys\n"
        "import ktrdr.cli.main, ktrdr.client, ktrdr_host.server\n"
        "print('ray' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
