"""``python -m cae_fast`` is ``python -m cae_fast.run``."""

import sys

from cae_fast.cli.main import main

sys.exit(main())
