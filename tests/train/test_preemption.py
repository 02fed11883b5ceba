"""Signals: the first SIGTERM or SIGINT is a flag, a second SIGINT aborts, an evaluation stops at once, and the
previous handlers come back (real signals sent to this process)."""
import os
import signal

import pytest

from rsvlm_jax.train import preemption


def _send(signum):
  os.kill(os.getpid(), signum)  # Python runs the handler before the next bytecode of this thread.


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_first_signal_is_a_flag_and_handlers_are_restored(signum):
  before = signal.getsignal(signum)
  with preemption.Signals() as signals:
    assert not signals.requested
    _send(signum)
    assert signals.requested and signals.name == signal.Signals(signum).name
    _send(signal.SIGTERM)  # Another SIGTERM changes nothing.
    assert signals.signum == signum
  assert signal.getsignal(signum) is before


def test_second_sigint_aborts():
  with preemption.Signals() as signals:
    _send(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt, match="SIGINT received twice: aborted without saving"):
      _send(signal.SIGINT)
    assert signals.name == "SIGTERM"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_an_interruptible_block_at_once(signum):
  ran_on = []
  with preemption.Signals() as signals:
    with pytest.raises(preemption.Interrupted, match=f"{signal.Signals(signum).name} received"):
      with signals.interruptible():
        _send(signum)
        ran_on.append("after the signal")
    assert not ran_on and signals.requested
    with pytest.raises(preemption.Interrupted):  # A signal that came before a block stops it too.
      with signals.interruptible():
        ran_on.append("a later block")
    assert not ran_on
