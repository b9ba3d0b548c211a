"""Built-in checks: poisoning. (Being written; see the catalogue in the README.)"""
