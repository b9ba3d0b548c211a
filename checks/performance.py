"""Built-in checks: performance. (Being written; see the catalogue in the README.)"""
