"""``python -m auditkit``: the same command line as the ``auditkit`` script."""

from auditkit.cli import main

if __name__ == "__main__":
    main()
