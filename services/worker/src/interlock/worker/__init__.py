"""Interlock worker service."""
