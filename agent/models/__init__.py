"""Request and result models shared by the HTTP layer and the services.

Pydantic models validate requests and generate the OpenAPI document, so the two cannot drift.
"""
