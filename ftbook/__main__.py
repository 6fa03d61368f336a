"""`python -m ftbook VERB ...`, the form `accelerate launch ... -m ftbook VERB ...` starts on every process."""
import sys

from ftbook.cli import main

if __name__ == "__main__":
    sys.exit(main())
