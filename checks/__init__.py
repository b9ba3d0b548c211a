"""auditkit's built-in checks, installed as ``auditkit.checks``.

Each module holds the checks of one area; ``auditkit.registry.BUILTIN_MODULES`` lists them.
Checks use only auditkit's public API.
"""
