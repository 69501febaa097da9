"""Helpers for testing workflows and the code around them (scripted servers, fixtures)."""
