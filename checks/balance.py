"""Built-in checks: balance. (Being written; see the catalogue in the README.)"""
