"""SQL migrations of the tables the shared library owns (outbox, inbox).

Component ``interlock.common``; services apply them with their own set through
:func:`interlock.common.postgres.apply_migrations` and
:data:`interlock.common.postgres.COMMON_MIGRATIONS`.
"""
