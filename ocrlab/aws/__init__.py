"""The Lambda edge: the handler, its events, its quota and its metric lines."""
