"""The worker at run time: fetch scheduled tasks, run them, report, commit.

Flow of one attempt::

    task.scheduled record ─► waiting (per partition) ─► running (slot taken)
        ─► task.started ─► executor ─► task.completed | task.failed
        ─► published ─► offset done ─► committed

- Backpressure: at most ``max_in_flight`` tasks run; fetched tasks wait only for the
  free slots plus ``prefetch`` (at most ``max_in_flight``), so a busy worker leaves
  queued tasks to workers with room; a full worker stops calling ``getmany``, and no
  partition may hold more than its
  share of the waiting tasks. Partitions are read in turn and waiting tasks start in
  round-robin order across partitions.
- At-least-once: a partition's offset is committed only up to its oldest record
  whose outcome is not published, at most once per ``commit_interval_ms``; the
  scheduler ignores duplicate outcomes.
- Publishing is batched (:class:`~interlock.worker.reporter.Reporter`).
- ``task.started`` is sent once the attempt's first step has run, and only when the
  attempt is still running then: a task done at once (``noop``) reports just its
  outcome, which carries ``started_at`` and the worker id anyway. That halves the
  events of instantaneous tasks, for this worker and for every consumer.
- A per-instance consumer of ``workflow.cancelled`` and ``task.settled`` aborts the
  running tasks of a cancelled run, or a task the scheduler cancelled (its run timed
  out), and skips their fetched copies.
- A copy of an attempt finished lately (re-sent by the scheduler, or redelivered)
  gets its outcome again, not a second run (``_finished.py``).
- A background loop that dies while the worker runs asks for a process restart
  (``/healthz`` fails), since nothing in-process can bring it back.
- Closing drains: stop fetching, let running tasks finish within
  ``drain_timeout_ms``, report the rest as failed (retryable), commit, leave.

The roles, one module each (as aiokafka splits its consumer)::

    _worker.py        Worker: wires the roles, opens them, drains them
    _backlog.py       Backlog: attempts waiting (per partition), running, unreported
    _fetcher.py       Fetcher: getmany, fair across partitions, only while there is room
    _finished.py      FinishedAttempts: outcomes of the attempts finished lately
    _dispatcher.py    Dispatcher: start attempts as slots free up, run, release, abort
    _execution.py     execute(): params in, executor, timeout, JSON output out
    _reports.py       AttemptReports: task.started / outcome / log events, metrics
    _heartbeats.py    send_heartbeats(): each running attempt's, and its new log lines
    _commits.py       OffsetCommitter: offsets done once published, committed in turns
    _cancellation.py  Cancellations: workflow.cancelled / task.settled consumer, aborts
                      (it hands task.log_missing on to _sent_logs)
    _sent_logs.py     SentLogs: published log lines, kept a while to send again
    _rebalance.py     RebalanceListener: commit and forget revoked partitions
    _metrics.py       per task type metric series
    _tracing.py       attempt_spans(): an attempt's consumer and executor spans
"""

from interlock.worker.runtime._worker import Worker

__all__ = ["Worker"]
