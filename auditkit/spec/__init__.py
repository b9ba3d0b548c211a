"""The audit.yaml contract: the pydantic schema and loader, the slice language, the no-code policy."""
