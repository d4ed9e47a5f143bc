"""The shared service fixture (see tests/support/service.py)."""

from tests.support.service import service  # noqa: F401
