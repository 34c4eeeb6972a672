"""X11 services on python-xlib. Nothing here imports aiohttp or knows of HTTP."""
