"""``python -m ktrdr_host [options]`` is ``ktrdr host serve [options]``."""

import sys

from ktrdr.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["host", "serve", *sys.argv[1:]]))
