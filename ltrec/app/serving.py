"""``python -m ltrec.app.serving``: the serving check of ``./run.sh`` (Makefile ``run``).

Prints the ``streamlit run`` flags that follow ltrec's settings (address, upload limit) and
exits 0; when the address needs sign-in and none is configured, prints why to stderr and exits
2, so the server never starts. The warning of ``LTREC_ALLOW_ANONYMOUS=1`` goes to stderr on
every start. ``app.py`` repeats the same check (:func:`ltrec.app.auth.serving_check`) against
the address Streamlit actually serves, for ``streamlit run app.py`` started by hand.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from ltrec.app.auth import auth_configured, secrets_files, serving_check
from ltrec.config import get_settings
from ltrec.errors import LtrecError

REPO = Path(__file__).resolve().parents[2]


def flags() -> list[str]:
    """The flags, after the check (raises :class:`~ltrec.app.auth.ServingRefused`)."""
    settings = get_settings()
    decision = serving_check(
        settings.address, auth_configured(secrets_files(REPO)), settings.allow_anonymous
    )
    if decision.warning:
        print(decision.warning, file=sys.stderr)
    return [
        "--server.address",
        settings.address,
        "--server.maxUploadSize",
        str(settings.max_upload_mb),
    ]


def main() -> int:
    try:
        print(shlex.join(flags()))
    except LtrecError as err:
        print(f"ltrec: {err}", file=sys.stderr)
        return 2
    except ValueError as err:  # a malformed LTREC_* value (pydantic names the setting)
        print(f"ltrec: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
