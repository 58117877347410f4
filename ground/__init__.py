"""The ground floor: what every floor may import, and which imports nothing of ours.

The clock, settings, Redis key names, the types handlers return and the ports the
edge installs at start. Nothing here imports bot/, handlers/, faq/, store/ or
scheduler/ (tests/test_layers.py holds the line).
"""
