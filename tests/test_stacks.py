"""SIGUSR1 writes every thread's stack to stderr, and the process goes on."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.services import REPO_ROOT


def test_sigusr1_writes_every_threads_stack_and_the_process_goes_on() -> None:
    program = textwrap.dedent(
        """
        import os, signal, threading
        from runtime.stacks import dump_stacks_on_signal

        def waiting_in_a_worker():
            release.wait()

        release = threading.Event()
        worker = threading.Thread(target=waiting_in_a_worker, name="worker")
        worker.start()
        assert dump_stacks_on_signal()
        os.kill(os.getpid(), signal.SIGUSR1)
        release.set()
        worker.join()
        print("went on")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "went on"
    assert done.stderr.count("most recent call first") >= 2  # the main thread and the worker
    assert "waiting_in_a_worker" in done.stderr
