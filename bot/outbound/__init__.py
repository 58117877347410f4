"""Everything that leaves: the outbox, platform clients, tokens, rate limits, the sender."""
