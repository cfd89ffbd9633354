"""`python -m dagprof` is `dagprof`, for environments where the console script is not on PATH."""

import sys

from .entry import main

sys.exit(main())
