"""``Agent`` and ``AsyncAgent``: the generated methods plus construction, ``/actions``,
``/batch`` and the helpers a script wants (screenshots as bytes or PIL images, copying files)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from agent.actions.registry import load_all

# The generated methods import result models from operation modules, which register their
# operations as they are imported; loading them all first keeps the registry (and so the OpenAPI
# document's order) the same whichever module a process imports first.
load_all()

from agent.client import calls  # noqa: E402
from agent.client._operations import AsyncOperations, Operations  # noqa: E402
from agent.client.base import DEFAULT_TIMEOUT, Target  # noqa: E402
from agent.client.transfers import Progress  # noqa: E402

if TYPE_CHECKING:
    from PIL.Image import Image

    from agent.models.files import FileEntry

URL_ENV = "COMPUTER_AGENT_URL"
TOKEN_ENV = "COMPUTER_AGENT_TOKEN"
TOKEN_FILE_ENV = "COMPUTER_AGENT_TOKEN_FILE"
DEFAULT_URL = "http://127.0.0.1:8000"
ACTIONS = calls.Spec("actions", "POST", "/actions")
BATCH = calls.Spec("batch", "POST", "/batch")


def resolve_target(
    url: str | None,
    token: str | None,
    token_file: str | os.PathLike[str] | None,
    *,
    timeout: float,
    retries: int,
    max_retry_delay: float,
) -> Target:
    """The agent to talk to: arguments, else COMPUTER_AGENT_URL and COMPUTER_AGENT_TOKEN(_FILE)."""
    url = url or os.environ.get(URL_ENV) or DEFAULT_URL
    if token is None:
        token_file = token_file or os.environ.get(TOKEN_FILE_ENV) or None
        if token_file is not None:
            token = Path(token_file).read_text().strip()
        else:
            token = os.environ.get(TOKEN_ENV) or None
    return Target(url, token, timeout, retries, max_retry_delay)


class Agent(Operations):
    """A blocking client of one agent: ``Agent(url, token=...)``; every operation is a method.

    Errors are ``agent.client.errors`` exceptions (``code``, ``message``, ``details``,
    ``request_id``); a read (GET) answered 503 is retried after its Retry-After, ``retries`` times
    (never BROWSER_CLOSED; never an action, which may have run in part).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        token: str | None = None,
        token_file: str | os.PathLike[str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = 3,
        max_retry_delay: float = 10.0,
        coordinate_space: str | None = None,
    ) -> None:
        super().__init__(
            resolve_target(
                url, token, token_file, timeout=timeout, retries=retries, max_retry_delay=max_retry_delay
            )
        )
        if coordinate_space is not None:  # "1024x768": every call's coordinates and screenshots in it
            self._target.headers["X-Coordinate-Space"] = coordinate_space

    @property
    def url(self) -> str:
        return self._target.url

    def __enter__(self) -> Agent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def action(self, type: str, **fields: Any) -> dict[str, Any]:
        """POST /actions: any action by its type; the answer's ``result`` object."""
        prepared = calls.prepare(ACTIONS, {})
        prepared.body = calls.dumps({"type": type, **fields})
        result: dict[str, Any] = orjson.loads(self._exchange(prepared)[0])["result"]
        return result

    def batch(self, actions: list[dict[str, Any]], *, stop_on_error: bool = True) -> dict[str, Any]:
        """POST /batch: the actions in order under the input lock; the whole answer."""
        answer: dict[str, Any] = orjson.loads(
            self._exchange(calls.prepare(BATCH, {"actions": actions, "stop_on_error": stop_on_error}))[0]
        )
        return answer

    def screenshot_bytes(self, **options: Any) -> bytes:
        """The screen as encoded image bytes (PNG unless ``format=`` says otherwise)."""
        return self.screenshot(**options).data

    def screenshot_image(self, **options: Any) -> Image:
        """The screen as a PIL image."""
        return self.screenshot(**options).to_pil()

    def upload(
        self, local: str | os.PathLike[str], remote: str, *, progress: Progress | None = None
    ) -> FileEntry:
        """Copy a local file to ``remote`` on the VM, streamed."""
        return self.files_put(remote, Path(local), progress=progress)

    def download(
        self, remote: str, local: str | os.PathLike[str], *, progress: Progress | None = None
    ) -> int:
        """Copy ``remote`` from the VM to a local file, streamed; returns the bytes written."""
        with self.files_get(remote) as download:
            return download.save(local, progress)


class AsyncAgent(AsyncOperations):
    """The asyncio client (aiohttp): ``async with AsyncAgent(url, token=...) as agent``."""

    def __init__(
        self,
        url: str | None = None,
        *,
        token: str | None = None,
        token_file: str | os.PathLike[str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = 3,
        max_retry_delay: float = 10.0,
        coordinate_space: str | None = None,
    ) -> None:
        super().__init__(
            resolve_target(
                url, token, token_file, timeout=timeout, retries=retries, max_retry_delay=max_retry_delay
            )
        )
        if coordinate_space is not None:  # "1024x768": every call's coordinates and screenshots in it
            self._target.headers["X-Coordinate-Space"] = coordinate_space

    @property
    def url(self) -> str:
        return self._target.url

    async def __aenter__(self) -> AsyncAgent:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def action(self, type: str, **fields: Any) -> dict[str, Any]:
        """POST /actions: any action by its type; the answer's ``result`` object."""
        prepared = calls.prepare(ACTIONS, {})
        prepared.body = calls.dumps({"type": type, **fields})
        result: dict[str, Any] = orjson.loads((await self._exchange(prepared))[0])["result"]
        return result

    async def batch(self, actions: list[dict[str, Any]], *, stop_on_error: bool = True) -> dict[str, Any]:
        """POST /batch: the actions in order under the input lock; the whole answer."""
        prepared = calls.prepare(BATCH, {"actions": actions, "stop_on_error": stop_on_error})
        answer: dict[str, Any] = orjson.loads((await self._exchange(prepared))[0])
        return answer

    async def screenshot_bytes(self, **options: Any) -> bytes:
        return (await self.screenshot(**options)).data

    async def screenshot_image(self, **options: Any) -> Image:
        return (await self.screenshot(**options)).to_pil()

    async def upload(
        self, local: str | os.PathLike[str], remote: str, *, progress: Progress | None = None
    ) -> FileEntry:
        return await self.files_put(remote, Path(local), progress=progress)

    async def download(
        self, remote: str, local: str | os.PathLike[str], *, progress: Progress | None = None
    ) -> int:
        async with await self.files_get(remote) as download:
            return await download.save(local, progress)
