"""Development tools (the fake platform, ...); never imported by production code paths."""
