"""The worker's decisions, free of I/O: offsets to commit, slots, failures, addresses."""
