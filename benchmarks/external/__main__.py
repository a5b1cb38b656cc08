import sys

from benchmarks.external.runner import main

sys.exit(main())
