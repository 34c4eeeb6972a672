"""aiohttp's HTTP client, loaded when something first uses it rather than with the server.

``import aiohttp.web`` runs ``aiohttp/__init__.py`` first, and that imports the whole client:
the connector (which builds two TLS contexts at import, reading the CA bundle), cookie jars,
multipart and form data: ~4 MiB and ~30 ms on these VMs that a server with no heartbeat
configured never uses. ``defer()`` puts the package in ``sys.modules`` without running its
``__init__``; its submodules (``aiohttp.web``, ``aiohttp.hdrs``...) import as usual, and the
first use of a name only ``__init__`` defines (``aiohttp.ClientSession``, the heartbeat's
first beat) runs it then, in the same module object, exactly as an import would have.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
import types
from pathlib import Path
from typing import Any

PACKAGE = "aiohttp"
_VERSION = re.compile(r'^__version__ = "([^"]+)"', re.M)


def defer() -> bool:
    """Install the deferred package, unless aiohttp is imported already; whether it was."""
    if PACKAGE in sys.modules:
        return False
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.loader is None or spec.origin is None or not spec.submodule_search_locations:
        return False
    init = Path(spec.origin)
    version = _VERSION.search(init.read_text(encoding="utf-8"))
    if version is None:  # not the layout this was written for: import it the usual way
        return False
    module = importlib.util.module_from_spec(spec)
    module.__dict__["__version__"] = version.group(1)  # aiohttp.http reads it at import (Server header)
    directory = init.parent
    loaded = False

    def complete(name: str) -> Any:
        """A submodule is imported as such; any other name runs ``__init__`` once, then is read."""
        nonlocal loaded
        if name.startswith("__"):
            raise AttributeError(name)
        if _is_submodule(directory, name):
            return importlib.import_module(f"{PACKAGE}.{name}")
        if not loaded:
            loaded = True
            del module.__getattr__  # __init__ may define its own
            spec.loader.exec_module(module)  # type: ignore[union-attr]
        return module.__dict__[name] if name in module.__dict__ else _missing(name)

    module.__getattr__ = complete  # type: ignore[method-assign]
    sys.modules[PACKAGE] = module
    return True


def _is_submodule(directory: Path, name: str) -> bool:
    if (directory / f"{name}.py").exists() or (directory / name / "__init__.py").exists():
        return True
    return any(directory.glob(f"{name}.*.so"))


def _missing(name: str) -> Any:
    module = sys.modules[PACKAGE]
    getter = module.__dict__.get("__getattr__")  # aiohttp's own lazy names (its gunicorn workers)
    if isinstance(getter, types.FunctionType):
        return getter(name)
    raise AttributeError(f"module {PACKAGE!r} has no attribute {name!r}")
