"""pytest configuration shared by all tests."""


def pytest_collection_modifyitems(items):
  # tf.test.TestCase.test_session is a deprecated helper, not a test; pytest
  # would otherwise list it as a skipped test in every test class.
  items[:] = [item for item in items if item.name != "test_session"]
