"""Placeholder."""


def main() -> None:
    """Run."""
