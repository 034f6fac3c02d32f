"""The AppTest fixtures of tests/app (the test demo shop, built once per session)."""

from tests.app.conftest import _clear_caches, _demo_file, demo  # noqa: F401
