//! The delivery outbox on PostgreSQL (being ported).
