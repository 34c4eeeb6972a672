"""The desktop session: its user, its environment, launching apps into it, a private one for dev."""
