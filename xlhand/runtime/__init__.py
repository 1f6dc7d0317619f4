"""Driving hands: the driver interface and the built-in sim driver."""
