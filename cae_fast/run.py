"""``python -m cae_fast.run``: the command line, kept at its documented name (``cae_fast.cli.main``)."""

import sys

from cae_fast.cli.main import main, run

__all__ = ["main", "run"]

if __name__ == "__main__":
    sys.exit(main())
