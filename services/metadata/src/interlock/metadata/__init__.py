"""Interlock metadata service."""
