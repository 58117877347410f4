"""Scheduled work: APScheduler definitions that enqueue rq tasks."""
