"""auditkit's built-in checks, installed as ``auditkit.checks``.

Every public module holds checks (the registry loads them all); a module whose name starts with
``_`` holds helpers shared by built-in checks. Checks import only ``auditkit`` and
``auditkit.toolkit`` (docs/ARCHITECTURE.md; a test enforces it).
"""
