"""acqs: the Asterisk Central Queue System, on Twisted."""
