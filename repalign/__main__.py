"""``python -m repalign``: the command line (:mod:`repalign.cli`)."""

import sys

from repalign.cli import main

sys.exit(main())
