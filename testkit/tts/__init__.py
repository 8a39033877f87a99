"""Helpers for the voice service tests: clips, a clip server, a resolver, the tiny engine."""
