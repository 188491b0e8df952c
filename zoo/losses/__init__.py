"""Losses as pure functions, one home each (shapes in the docstrings)."""
