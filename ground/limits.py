"""What the platforms allow (../shared/PLATFORM.md), one constant each: the
facts the edge enforces and the handlers plan around."""
from __future__ import annotations

from datetime import datetime, timedelta

# Official Account customer-service messages reach an owner only within 48 h of
# the owner's last message (errcode 45015 after it).
CS_WINDOW = timedelta(hours=48)
# A text sent this close to the window's end might land after it: use the template.
CS_WINDOW_MARGIN = timedelta(minutes=10)


def in_cs_window(last_inbound: datetime | None, now: datetime, margin: timedelta = CS_WINDOW_MARGIN) -> bool:
    """Whether a customer-service text sent now still reaches the owner."""
    return last_inbound is not None and now - last_inbound < CS_WINDOW - margin
