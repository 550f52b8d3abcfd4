"""Validation: every variant checked against Keras on held-out data, on every CPU class it is for."""
