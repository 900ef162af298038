"""Helpers that make trust material, images and signatures for the tests and the demo.

Nothing under `provider.devkit` is imported by the serving code: it signs things, the provider only verifies.
"""
