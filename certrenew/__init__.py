"""certrenew: the TLS certificate renewal runbook as Prefect certrenew.flows."""
