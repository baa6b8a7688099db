"""Handing alerts raised outside the camera pipeline (sensor posts, MQTT, dropped FIRMS files) to a
delivery worker, for the channels each was scheduled on.

``schedule`` writes an alert's deliveries pending only for the channels that want its kind; the
worker treats a channel it is handed as pending when the alert has no entry for it, so handing it
every channel would send a "fire" alert to a channel that asked only for "person". This reads the
scheduled names back after the commit and hands over those channels alone.
"""

from __future__ import annotations

from collections.abc import Sequence

from pardus.alerts.notify import Channel, DeliveryWorker
from pardus.store import Workspace
from pardus.store.models import Alert


def enqueue_scheduled(ws: Workspace, deliveries: DeliveryWorker, alert_ids: Sequence[str],
                      channels: Sequence[Channel]) -> None:
    """Call after the commit that created the alerts (their pending deliveries are in the store)."""
    if not alert_ids:
        return
    with ws.db.session() as s:
        names = {a.id: set((a.details or {}).get("deliveries") or {})
                 for a in (s.get(Alert, i) for i in alert_ids) if a is not None}
    for alert_id, wanted in names.items():
        chosen = [c for c in channels if c.name in wanted]
        if chosen:
            deliveries.enqueue(alert_id, chosen)
