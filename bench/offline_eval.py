"""``python -m bench.offline_eval [FILE ...]`` — the same as ``calguard eval-offline``."""

import sys

from guard.cli import main

if __name__ == "__main__":
    sys.exit(main(["eval-offline", *sys.argv[1:]]))
