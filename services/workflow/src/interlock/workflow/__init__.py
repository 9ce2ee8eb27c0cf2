"""Interlock workflow service."""
