"""``python -m ltrec.cli``: the ``ltrec`` command."""

import sys

from ltrec.cli import main

sys.exit(main())
