"""The desktop seam the actions drive: the backend protocol, key names and image encoding."""
