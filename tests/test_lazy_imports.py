"""Every in-function import in ltrec/ says why it is lazy (docs/architecture.md, the import rule).

The check is scripts/lazy_imports.py: an ``import`` inside a function or method needs a
``# lazy: <reason>`` comment on its line or the line directly above.
"""

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _checker():
    spec = importlib.util.spec_from_file_location(
        "lazy_imports", REPO / "scripts" / "lazy_imports.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_in_function_import_in_ltrec_gives_its_reason():
    found = _checker().check([REPO / "ltrec"])
    listed = [f"{path.relative_to(REPO)}:{line}: {module}" for path, line, module, _ in found]
    assert listed == [], "in-function imports without a `# lazy: <reason>` comment:\n" + "\n".join(
        listed
    )


def test_the_check_finds_an_unreasoned_import_and_accepts_a_reasoned_one(tmp_path):
    src = tmp_path / "mod.py"
    src.write_text(
        "import os\n"
        "\n"
        "def f():\n"
        "    import json\n"
        "    # lazy: a reason on the line above\n"
        "    import math\n"
        "    import re  # lazy: a reason on the same line\n"
        "    class C:\n"
        "        def g(self):\n"
        "            from collections import abc\n"
    )
    found = _checker().offenders(src)
    assert found == [(4, "json"), (10, "collections")]
