"""``python -m tools.corpora``: rebuild (or, with ``--check``, verify) the shipped offline corpora."""

import sys

from tools.corpora.build import main

if __name__ == "__main__":
    sys.exit(main())
