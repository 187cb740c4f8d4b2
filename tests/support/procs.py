"""Child processes the fixtures start in their own session (so they can be killed as a group)."""

import ctypes
import os
import signal
import subprocess


def die_with_parent():
    """For Popen's preexec_fn: the child gets SIGTERM when the test process dies (a test runner killed by a
    timeout never reaches __exit__), so no server outlives its test. Linux ties this to the forking thread:
    start servers from the main thread (or one that outlives them)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def stop_process_group(process, grace=5.0):
    """Stops `process` and its group: SIGTERM, then SIGKILL when it has not exited within `grace` seconds.
    A process that already exited, or None, is left alone."""
    if process is None or process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=5)
