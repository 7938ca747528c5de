"""Example scripts (also importable, for the tests)."""
