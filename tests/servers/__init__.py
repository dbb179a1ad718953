"""Real servers the tests start themselves, as pytest plugins (list them in ``pytest_plugins``)."""
