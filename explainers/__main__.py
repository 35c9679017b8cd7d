"""``python -m explainers``: the command line kept under its old name. The command line itself is the
package ``cli`` (above explainers/ in the layers); this shim is the one file of explainers/ allowed to
import it, and nothing imports the shim (tests/test_layers.py)."""

import sys

from cli.main import main

if __name__ == "__main__":  # not when a worker process re-imports the main module
    sys.exit(main())
