"""Built-in checks: adversarial. (Being written; see the catalogue in the README.)"""
