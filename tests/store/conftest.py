import pytest


@pytest.fixture(autouse=True)
def _hermetic(clean_env):
    """No NEXUS_* variable from the environment leaks into these tests."""
