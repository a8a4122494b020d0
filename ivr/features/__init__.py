"""AGI features: one module per script name Asterisk asks for (agi://host:port/NAME),
registered by name on the FastAGI server. Entry points stay thin; decisions live in the
menu engine and the router."""
