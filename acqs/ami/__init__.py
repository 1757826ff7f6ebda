"""acqs' own Asterisk Manager Interface client: messages, framing, protocol."""
