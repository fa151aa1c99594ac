"""Shared test configuration. Fixtures used by several layers live in tests/support/."""
