"""certrenew: the TLS certificate renewal runbook as Prefect flows."""
