"""ecom-lakehouse: landed files to Delta Lake tables, orchestrated by Dagster."""

import os
import sys

# Arrow's buffers from its jemalloc pool (the Linux wheels have it): pyarrow's default,
# mimalloc, held ~35 MB more at the 100,000-order benchmark's peak. Arrow reads this on its
# first allocation, so it is set before any module of the package imports pyarrow; an explicit
# setting wins.
if sys.platform == "linux":
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")
