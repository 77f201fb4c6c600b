"""The decision core: messages, facts, the rulebook, the engine seam, combining, explanation.

Pure Python: imports nothing else from policy_service and no Flask, marshmallow, peewee or psycopg2;
only `engine` imports durable_rules. Everything above builds on this layer.
"""
