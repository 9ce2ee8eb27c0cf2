"""The local platform without Docker, and the test fixtures that start the same servers."""
