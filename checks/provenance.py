"""Built-in checks: provenance. (Being written; see the catalogue in the README.)"""
