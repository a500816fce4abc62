"""What every run process of `certrenew serve` inherits: imported once by the fork server.

Importing this module is its purpose (certrenew.deployments.preload lists it
with the flows): the fork server sets up here what each fork then has before
its first step.
"""

from __future__ import annotations

import signal

from certrenew.tasks.waiting import leave_warm_waits_on_signal

leave_warm_waits_on_signal()

# Ctrl-C in the terminal of `certrenew serve` reaches every process of its group, each
# run's included: a run waiting warm took it as KeyboardInterrupt and crashed before
# its serving process could suspend it. The serving process stops its runs itself
# (certrenew.deployments.serve): a run ignores the terminal. The fork server keeps
# the handlers found after its preload for the processes it forks.
signal.signal(signal.SIGINT, signal.SIG_IGN)
