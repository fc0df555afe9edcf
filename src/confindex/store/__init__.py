"""The workspace on disk: where things live (workspace), the transcript schema (transcript),
the job ledger, and the one writer (publish)."""
