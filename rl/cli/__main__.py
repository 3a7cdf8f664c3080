"""``python -m rl.cli``: the same as the ``sailrl`` command (the pipeline runs stages so)."""

import sys

from rl.cli import main

sys.exit(main())
