"""Interlock scheduler service."""
