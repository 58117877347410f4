"""The bookings capability (member services under the O1-O3 clocks); see
handlers/capability.py for what a capability declares."""
from handlers.capability import Capability

capability = Capability("bookings")
# Its O1-O3 clocks fire in the clock engine's `deadlines` job (handlers/clocks/capability.py).
