"""The parent's handle on the measurement process (`evo.measure.device`).

Timing happens in one long-lived child process, so the runtime thread count is
fixed before TVM starts (`TVM_NUM_THREADS`), nothing else of ours runs while it
times, and a program that crashes or runs absurdly long at run time kills only
that process: the job gets an error and the next job starts a fresh one.

A reply that is not the program's doing carries `"blame"`: "machinery" when the
process could not start (no tracker, no server under the key, a crash while
starting) or had died before the request, "unclear" when an RPC session was lost
while the program ran (the remote program may have crashed its server, or the
server went away); the evaluator tells those apart with a reference program.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
from pathlib import Path

from evo.measure.build import describe_exit
from evo.measure.shield import OWN_GROUP
from evo.measure.timing import TimingPolicy


class MeasurementProcess:
    """Sends libraries to the measurement process and reads back their timings."""

    def __init__(self, runner: str | None, threads: int | None, policy: TimingPolicy,
                 timeout_s: float = 120.0, start_timeout_s: float = 120.0) -> None:
        self.runner = runner
        self.threads = threads
        self.policy = policy
        self.timeout_s = timeout_s
        self.start_timeout_s = start_timeout_s
        self.device_threads: int | None = None
        self._process: subprocess.Popen | None = None

    def start(self) -> str | None:
        """Start the process if it is not running; returns an error or None."""
        if self._process is not None and self._process.poll() is None:
            return None
        env = dict(os.environ)
        if self.threads:
            env["TVM_NUM_THREADS"] = str(self.threads)
        command = [sys.executable, "-m", "evo.measure.device"]
        if self.runner:
            command.append(self.runner)
        # Stopping it is ours to do, not a terminal's: a process group of its own.
        self._process = subprocess.Popen(command, stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, env=env, text=True,
                                         bufsize=1, **OWN_GROUP)
        try:
            hello = self._read(self.start_timeout_s, "starting the measurement process")
        except ValueError:  # not JSON: something else wrote to its reply channel
            hello = {"error": "the measurement process did not start properly"}
        if "error" in hello or "fatal" in hello:
            self.stop()
            return hello.get("error") or f"measurement device: {hello['fatal']}"
        self.device_threads = int(hello["threads"])
        return None

    def time(self, library: Path, spec: dict, genome: list) -> dict:
        """Time one library; the reply has median_ms/spread/repeats/flagged/threads or error."""
        error = self.start()
        if error is not None:
            return {"error": error, "blame": "machinery"}
        request = {"library": str(library), "spec": spec, "genome": genome,
                   "policy": self.policy.to_json()}
        try:
            self._process.stdin.write(json.dumps(request) + "\n")
            self._process.stdin.flush()
        except (BrokenPipeError, OSError):
            return {**self._died("sending to the measurement process"), "blame": "machinery"}
        reply = self._read(self.timeout_s, "running the program")
        if self.runner and reply.get("died"):  # the local end of an RPC session
            reply["blame"] = "unclear"
        if reply.get("blame") == "unclear":  # the process ends after such a reply
            self.stop()
        return reply

    def _read(self, timeout_s: float, doing: str) -> dict:
        stdout = self._process.stdout
        ready, _, _ = select.select([stdout], [], [], timeout_s)
        if not ready:
            self.stop(kill=True)
            return {"error": f"measurement timed out after {timeout_s:g} s while {doing}"}
        line = stdout.readline()
        if not line:
            return self._died(doing)
        return json.loads(line)

    def _died(self, doing: str) -> dict:
        status = self._process.wait()
        self._process = None
        reason = describe_exit(_as_wait_status(status), "measurement process")
        return {"error": f"{reason or 'measurement process exited'} while {doing}", "died": True}

    def stop(self, kill: bool = False) -> None:
        """End the process: close its input and let it finish, or kill it at once."""
        if self._process is None:
            return
        if kill:
            self._process.kill()
        with contextlib.suppress(OSError):
            self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None


def _as_wait_status(returncode: int) -> int:
    """Popen's returncode (negative signal number) as an os.wait status."""
    return -returncode if returncode < 0 else returncode << 8
