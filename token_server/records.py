"""Session records as the API shows them: summary, form state and logs."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from .clock import iso
from .post_call import deliveries_of
from .store import SessionStore


def form_state(config: dict[str, Any], updates: list[dict[str, Any]]) -> dict[str, Any]:
    """Each form field with its latest value, whether it is filled, and when it changed."""
    form = config.get("form") or {"fields": []}
    latest: dict[str, dict[str, Any]] = {}
    for update in updates:
        latest[update["field"]] = update
    fields = []
    for field in form["fields"]:
        answer = latest.get(field["name"])
        fields.append(
            {
                "name": field["name"],
                "type": field["type"],
                "description": field.get("description", ""),
                "required": field.get("required", False),
                "value": answer["value"] if answer else None,
                "filled": answer is not None,
                "updated_at": answer["at"] if answer else None,
            }
        )
    return {
        "has_form": bool(form["fields"]),
        "complete": all(f["filled"] for f in fields if f["required"]),
        "fields": fields,
    }


async def session_summary(
    store: SessionStore, row: sa.Row, *, with_deliveries: bool = True
) -> dict[str, Any]:
    """Everything about one session but its event log; no secrets are stored to show."""
    config = dict(row.config)
    history = await store.history(row.id)
    form = form_state(config, await store.form_updates(row.id))
    summary = {
        "session_id": row.id,
        "character": row.character,
        "status": row.status,
        "end_reason": row.status_reason if row.status in ("ended", "failed") else None,
        "room_name": row.room_name,
        "participant_identity": row.participant_identity,
        "origin": row.origin,
        "origin_url": row.origin_url,
        "created_at": iso(row.created_at),
        "joined_at": iso(row.joined_at),
        "user_joined_at": iso(row.user_joined_at),
        "agent_joined_at": iso(row.agent_joined_at),
        "ended_at": iso(row.ended_at),
        "history": [{"status": h.status, "reason": h.reason, "at": iso(h.at)} for h in history],
        "metadata": config.get("metadata", {}),
        "unverified_metadata": config.get("unverified_metadata", {}),
        "config": config,
        "usage": row.usage,
        "form": form,
    }
    if with_deliveries:
        summary["webhooks"] = await deliveries_of(store.db, row.id)
    return summary


def list_item(row: sa.Row) -> dict[str, Any]:
    """One line of the session list."""
    return {
        "session_id": row.id,
        "character": row.character,
        "status": row.status,
        "end_reason": row.status_reason if row.status in ("ended", "failed") else None,
        "origin": row.origin,
        "created_at": iso(row.created_at),
        "ended_at": iso(row.ended_at),
    }


_TRANSCRIPT_KEYS = ("role", "source", "text", "start_time", "end_time", "interrupted", "at")


async def transcript(store: SessionStore, session_id: str) -> list[dict[str, Any]]:
    """Every transcript item of a session, in order."""
    out: list[dict[str, Any]] = []
    after = 0
    while page := await store.events(session_id, after=after, limit=1000, types=["transcript"]):
        out.extend(
            # (transcripts stored before typed turns existed were all spoken)
            {k: row.data.get(k, "voice" if k == "source" else None) for k in _TRANSCRIPT_KEYS}
            for row in page
        )
        after = page[-1].seq
    return out


async def post_call_payload(store: SessionStore, session_id: str) -> dict[str, Any]:
    """What the post-call webhook sends: the summary, the transcript and the form answers."""
    row = await store.get(session_id)
    if row is None:
        return {"session": None}
    summary = await session_summary(store, row, with_deliveries=False)
    return {"session": summary, "transcript": await transcript(store, session_id), "form": summary["form"]}
