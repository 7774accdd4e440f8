//! The notification outbox on PostgreSQL (being ported).
