"""Helper processes start in process groups of their own, so a terminal's Ctrl-C (sent
to the search's foreground group) never reaches them."""

from __future__ import annotations

import os
import subprocess
import sys

from evo.measure.shield import OWN_GROUP, start_loky_workers_in_own_group


def _group_and_pid() -> tuple[int, int]:
    return os.getpgid(0), os.getpid()


def test_loky_workers_lead_their_own_process_groups() -> None:
    from joblib.externals.loky import get_reusable_executor

    start_loky_workers_in_own_group()
    executor = get_reusable_executor(max_workers=2, timeout=5)
    try:
        answers = [executor.submit(_group_and_pid).result(timeout=120) for _ in range(4)]
    finally:
        executor.shutdown(wait=True, kill_workers=True)
    for group, pid in answers:
        assert pid != os.getpid()
        assert group == pid != os.getpgid(0), (group, pid)


def test_a_popen_with_own_group_leads_a_new_group() -> None:
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpgid(0), os.getpid())"],
                           capture_output=True, text=True, check=True, **OWN_GROUP)
    group, pid = map(int, child.stdout.split())
    assert group == pid != os.getpgid(0)
