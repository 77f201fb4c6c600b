"""The HTTP service: API views, webhooks, reviewer pages, operations, security, metrics and logs (Flask).

Speaks HTTP only: reaches stored data and the decision pipeline through `service` (with `contract`, `core`,
`review` and `config`); never imports `store` or `cli`. The app factory wires it together.
"""
