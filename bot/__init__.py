"""The edge of Guanjia: web app, channel adapters, inbox, outbound sender, CLI."""
