"""What every run process of `certrenew serve` inherits: imported once by the fork server.

Importing this module is its purpose (certrenew.deployments.preload lists it
with the flows): the fork server sets up here what each fork then has before
its first step.
"""

from __future__ import annotations

from certrenew.tasks.waiting import leave_warm_waits_on_signal

leave_warm_waits_on_signal()
