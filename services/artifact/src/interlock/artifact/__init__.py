"""Interlock artifact service."""
