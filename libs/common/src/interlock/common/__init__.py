"""What several Interlock services share."""
