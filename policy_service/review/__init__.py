"""The reviewers' toolkit: fixture runner and report, rule coverage, lint, catalogue, impact, reconciliation.

May import `core`, `contract` and `store`; never `web` or `cli` (the pages use this layer, not the reverse).
"""
