"""The wire contract: marshmallow schemas that validate every request and shape every response.

May import `policy_service.core`; nothing above it (store, review, web, cli).
"""
