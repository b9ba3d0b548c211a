"""Built-in checks: fairness. (Being written; see the catalogue in the README.)"""
