"""The service family of the clock engine: member services (O2 review /
contact, O3 feedback) and consultations (O1 first response), whose policies
are in handlers/data/member_clocks.yaml. What is theirs: roles are active
staff (`by_role`, the assignee's team first), a broken clock is a WeCom text,
the story goes to the audit log, and O3 stops by itself when the owner's
feedback message was really sent.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ground.clock import CST
from handlers.clocks import ClockSpec, Step, engine
from handlers.membership.notify import by_role, service_policies, staff_text
from handlers.message import Push
from store.models import AuditLog, Clock, OutboxMessage

# What goes to the audit log (a start or an in-time stop is on the row itself).
AUDITED = ("clock_warned", "clock_breached", "clock_escalated", "clock_cancelled", "clock_late")


class ServiceFamily:
    name = "service"
    late_state = "breached_met"  # the word the first service engine wrote; kept for its records

    def policy(self, clock_id: str) -> ClockSpec:
        return service_policies()[clock_id]

    def spec(self, session: Session, row: Clock) -> ClockSpec | None:
        return service_policies().get(row.clock)

    def record(self, session: Session, row: Clock, action: str, now: datetime, **detail) -> None:
        if action not in AUDITED:
            return
        session.add(AuditLog(actor="system", action=action, target=row.subject,
                             detail={"clock": row.clock, "rule": row.rule, **detail}))

    def auto_stop(self, session: Session, row: Clock) -> bool:
        """O3 is met when the owner's feedback message actually went out (the
        outbox row is sent), not when it was merely queued."""
        key = (row.detail or {}).get("outbox_dedup")
        if not key:
            return False
        sent = session.scalar(select(OutboxMessage).where(OutboxMessage.dedup_key == key, OutboxMessage.state == "sent"))
        if sent is None or sent.sent_at is None:
            return False
        engine.stop(session, row, sent.sent_at, by="feedback_sent", at=sent.sent_at)
        return True

    def _to(self, session: Session, row: Clock, who: tuple[str, ...]) -> list[str]:
        to: list[str] = []
        for w in who:
            if w == "assignee" and row.assignee:
                to.extend(row.assignee.split("|"))
            elif w in ("supervisor", "manager"):
                to.extend(s.userid for s in by_role(session, w, row.team))
        return list(dict.fromkeys(to))

    def warn(self, session: Session, row: Clock, spec: ClockSpec, now: datetime) -> list[Push]:
        to = self._to(session, row, (spec.holder if spec.holder != "callback" else "assignee",))
        self.record(session, row, "clock_warned", now, to=to, due_at=row.due_at.isoformat())
        text = (f"【即将超时】{spec.title}（{row.clock}）将于{row.due_at.astimezone(CST):%m-%d %H:%M}到期："
                f"{(row.detail or {}).get('title', row.subject)}。规定：{spec.text}。")
        return [staff_text("|".join(to), text, f"memclock:{row.id}:warn", source=f"clock:{row.subject}",
                           priority=1)] if to else []

    def escalate(self, session: Session, row: Clock, spec: ClockSpec, step: Step, now: datetime) -> list[Push] | None:
        late = int((now - row.due_at).total_seconds() // 60)
        text = (f"【超时{'升级' if row.level > 1 else '提醒'}】{spec.title}（{row.clock}）已超时{late}分钟："
                f"{(row.detail or {}).get('title', row.subject)}。规定：{spec.text}。"
                f"截止 {row.due_at.astimezone(CST):%m-%d %H:%M}，请立即处理。")
        to = self._to(session, row, step.to)
        self.record(session, row, "clock_escalated", now, level=row.level, to=to, due_at=row.due_at.isoformat())
        if not to:
            return []
        return [staff_text("|".join(to), text, f"memclock:{row.id}:L{row.level}", source=f"clock:{row.subject}",
                           priority=1)]


FAMILY = engine.register_family(ServiceFamily())
