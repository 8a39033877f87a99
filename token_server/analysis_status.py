"""Where a post-call analysis run is: `pending` (queued or waiting to retry) → `succeeded` or `failed`."""

from __future__ import annotations

from enum import StrEnum


class AnalysisStatus(StrEnum):
    """An analysis run's status, stored and shown as its value."""

    PENDING = "pending"  # queued, being run, or waiting for its next attempt
    SUCCEEDED = "succeeded"  # the LLM's reply held to the schema; `result` holds it
    FAILED = "failed"  # every attempt failed; `error` says why the last did


class AnalysisTrigger(StrEnum):
    """Why an analysis run was queued."""

    SESSION_ENDED = "session_ended"  # the session ended (queued in the same transaction)
    RERUN = "rerun"  # `POST /v1/sessions/{id}/analysis`
