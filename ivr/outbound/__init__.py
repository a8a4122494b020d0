"""Calls the hotline places to citizens: follow-ups (回访) and callbacks (回拨)."""
