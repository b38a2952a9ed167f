"""``python -m embedding_service [--host H] [--port P]``."""

import sys

from .cli import main

sys.exit(main())
