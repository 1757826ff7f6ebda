"""acqs tests: unit tests here, integration tests against real servers in tests.integration."""
