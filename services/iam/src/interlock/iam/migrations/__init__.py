"""The iam service's SQL migrations (``NNNN_description.sql``)."""
