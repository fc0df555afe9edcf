"""Getting work done: sources (fetch, inputs), the per-recording job, bulk runs and their
executors."""
