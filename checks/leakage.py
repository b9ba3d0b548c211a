"""Built-in checks: leakage. (Being written; see the catalogue in the README.)"""
