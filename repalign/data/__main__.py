"""``python -m repalign.data fetch NAME ...``: download data sets into the data root."""

import sys

from repalign.data.download import main

sys.exit(main())
