"""``python -m server_stub``: run the stub backup server (see server_stub/cli.py)."""

import sys

from server_stub.cli import main

sys.exit(main())
