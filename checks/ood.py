"""Built-in checks: ood. (Being written; see the catalogue in the README.)"""
