"""VIP and building groups (issue 6): registry and admission, the message
archive, moderation with the sanctions ladder, suggested replies for the staff
admin, and slash commands. Importing the package registers every handler."""
from handlers.groups import archive, commands, hooks, membership  # noqa: F401
from handlers.groups.archive import poll_archive  # noqa: F401  (the scheduler's entry point)
from handlers.groups.capability import capability  # noqa: F401,E402  (what this capability brings)
