"""``python -m explainers``: see explainers/cli.py."""

import sys

from explainers.cli import main

sys.exit(main())
