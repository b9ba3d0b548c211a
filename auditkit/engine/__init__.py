"""The check API and the engine that plans, runs and times checks (it knows no particular check)."""
