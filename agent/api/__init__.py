"""The HTTP layer: thin aiohttp handlers over the services. Only this package imports aiohttp.web."""
