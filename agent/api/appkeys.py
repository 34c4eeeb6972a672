"""Typed application state keys (aiohttp ``web.AppKey``), never module globals."""

from __future__ import annotations

from aiohttp import web

from agent.config import Config
from agent.services import Services

CONFIG_KEY = web.AppKey("config", Config)
SERVICES_KEY = web.AppKey("services", Services)
TOKEN_KEY = web.AppKey("token", bytes)  # empty: auth disabled (loopback + insecure_no_auth)
