"""All models, imported here so `Base.metadata` knows every table.

A capability adds its own module and one import line below.
"""
from store.models.base import Base  # noqa: F401
from store.models.community import Building, Group, GroupMember, Home, Owner, Staff  # noqa: F401
from store.models.messaging import AuditLog, Conversation, InboxMessage, OutboxMessage  # noqa: F401
from store.models.accounts import ApiToken, ConsoleSession, ConsoleUser  # noqa: F401
from store.models.campaigns import Campaign, Delivery, GroupBulkSend, JobRun, Reminder, SurveyAnswer  # noqa: F401
from store.models.clocks import CalendarClock, Clock, ServiceClock, TicketClock  # noqa: F401
from store.models.tickets import Ticket, TicketEvent  # noqa: F401
from store.models.membership import Booking, DowngradeNotice, MemberApplication, MemberSanction, QuotaUsage, ServiceCapacity, SpendEntry, TierChange  # noqa: F401
from store.models.groups import ArchiveCursor, GroupAdmission, GroupAnnouncement, GroupSuggestion, ModerationCase  # noqa: F401
from store.models.faq import FaqMiss  # noqa: F401
from store.models.consultations import Consultation, ConsultationEntry, TicketMedia  # noqa: F401
