"""Real SIP peers played by SIPp: citizens who call and press keys (RFC 4733), agents'
phones that register with digest auth and answer, and the 110 centre."""
