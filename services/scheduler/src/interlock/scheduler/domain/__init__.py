"""The scheduler's pure logic: state machines, DAG readiness, backoff, timers, run engine.

Nothing here does I/O; the clock and the random source are passed in.
"""
