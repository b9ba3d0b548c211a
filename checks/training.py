"""Built-in checks: training. (Being written; see the catalogue in the README.)"""
