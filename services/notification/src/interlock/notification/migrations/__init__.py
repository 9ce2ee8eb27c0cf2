"""SQL migrations of the notification service, applied in order by ``PostgresDatabase``."""
