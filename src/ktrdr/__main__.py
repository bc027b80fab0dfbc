"""``python -m ktrdr``: the ``ktrdr`` command line."""

import sys

from ktrdr.cli.main import main

sys.exit(main())
