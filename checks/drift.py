"""Built-in checks: drift. (Being written; see the catalogue in the README.)"""
