"""VIP and building groups (issue 6): registry and admission, the message
archive, moderation with the sanctions ladder, suggested replies for the staff
admin, and slash commands. Importing the package registers every handler."""
from handlers.groups import hooks, membership  # noqa: F401
