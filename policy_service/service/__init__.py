"""The service layer: what the service does, for every caller (the HTTP API, the command line, Python programs).

It owns the decision pipeline (resolve the history, fill in the business's stored state, evaluate, price,
log) and webhook ingestion, reconciliation and cost reports, over `core`, `contract`, `store` and `review`.
The web layer only speaks HTTP on top of it and imports no `store` module.
"""
