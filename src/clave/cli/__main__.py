"""``python -m clave.cli``: the ``clave`` command."""

import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())
