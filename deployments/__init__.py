"""How the flows are served, scheduled and triggered."""
