"""The PBX edge: rendering Asterisk's files and running Asterisk."""
