"""Interlock iam service."""
