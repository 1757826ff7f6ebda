"""
Integration tests against real servers: MariaDB, and Asterisk 22 when
ACQS_TEST_ASTERISK names a disposable one.  They skip with a reason where a
server is absent.
"""
