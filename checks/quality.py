"""Built-in checks: quality. (Being written; see the catalogue in the README.)"""
