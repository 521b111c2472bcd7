"""Stopping a fit where a student asked, never in the middle of a step.

The notebook's stop button and Ctrl-C both send SIGINT to the kernel; Python's default answer,
``KeyboardInterrupt`` wherever the code happens to be, could land between the optimizer's update
and the loop's count of it, and a resumed fit would apply that update twice. So while a fit runs,
:class:`StopRequest` turns the first SIGINT into a flag that the loop reads after each step
(``Trainer.stop()`` and the progress display's stop button set the same flag). A second SIGINT
while stopping raises ``KeyboardInterrupt`` as usual, so that a stuck evaluation can still be
broken off; during a step it waits until the step's update is applied and counted.
"""

from __future__ import annotations

import contextlib
import signal
import threading


class StopRequest:
    """The stop flag of a fit, and the SIGINT handler that sets it (see the module's notes)."""

    def __init__(self):
        self.requested = False
        self._in_step = False
        self._raise_after_step = False

    def request(self) -> None:
        """Stop after the current step."""
        self.requested = True

    @contextlib.contextmanager
    def catching_interrupts(self):
        """For the length of a fit: the flag starts down, and SIGINT raises it (main thread only:
        elsewhere Python delivers no signal, and a raw ``KeyboardInterrupt`` is the loop's to handle)."""
        self.requested = self._raise_after_step = False
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum, frame):
            if not self.requested:
                self.requested = True
            elif self._in_step:
                self._raise_after_step = True
            else:
                raise KeyboardInterrupt

        previous = signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    @contextlib.contextmanager
    def step(self):
        """Around one training step: a second SIGINT during it raises only when the step is done."""
        self._in_step = True
        try:
            yield
        finally:
            self._in_step = False
        if self._raise_after_step:
            raise KeyboardInterrupt
