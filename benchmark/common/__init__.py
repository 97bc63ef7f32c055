"""Foundations every layer uses: atomic file writes, hashing, the hardened YAML loader,
the strict pydantic base, optional heavy imports and the written metric conventions."""
