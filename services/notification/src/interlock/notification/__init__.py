"""Interlock notification service."""
