"""``python -m cae_fast`` is ``python -m cae_fast.run``."""

import sys

from cae_fast.run import main

sys.exit(main())
