"""The runbook's steps, grouped by the system they touch."""
