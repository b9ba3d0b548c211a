"""Built-in checks: corruption. (Being written; see the catalogue in the README.)"""
