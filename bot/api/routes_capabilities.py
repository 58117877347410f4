"""Routes for the capabilities built in parallel (tickets, bookings, groups, campaigns, FAQ)."""
