"""The shared service fixture (see tests/support/service.py) and the headless browser."""

from tests.support.browser import browser  # noqa: F401
from tests.support.service import service  # noqa: F401
