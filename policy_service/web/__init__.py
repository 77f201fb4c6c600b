"""The HTTP service: API views, webhooks, reviewer pages, operations, security, metrics and logs (Flask).

May import `core`, `contract`, `store` and `review`; never `cli`. The app factory wires it together.
"""
