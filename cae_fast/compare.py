"""``python -m cae_fast.compare``: every ``--arch`` on the same data (``cae_fast.cli.compare``)."""

import sys

from cae_fast.cli.compare import main

if __name__ == "__main__":
    sys.exit(main())
