"""``python -m ltrec``: the ``ltrec`` command."""

import sys

from ltrec.cli import main

sys.exit(main())
