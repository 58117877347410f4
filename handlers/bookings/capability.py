"""The bookings capability (member services under the O1-O3 clocks); see
handlers/capability.py for what a capability declares."""
from handlers.capability import Capability

capability = Capability("bookings")
capability.job("booking_clocks", "handlers.bookings:check_booking_clocks", trigger="interval", minutes=1,
               once_per="minute")
