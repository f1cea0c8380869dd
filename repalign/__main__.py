"""``python -m repalign``: the command line (:mod:`repalign.run.cli`)."""

import sys

from repalign.run.cli import main

sys.exit(main())
