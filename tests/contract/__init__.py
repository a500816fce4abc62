"""Behaviour every backend of a seam must have, written once.

A backend's test module subclasses the contract class and provides the fixture
it asks for; the backend is done when the inherited tests pass.
"""
