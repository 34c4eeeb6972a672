"""The action registry: every action declared once, served by REST, /actions, /batch and streams."""
