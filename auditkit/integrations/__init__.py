"""auditkit inside other tools: MLflow, pytest, CI job summaries."""
