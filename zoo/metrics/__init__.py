"""Evaluation metrics as pure functions and small helper networks."""
