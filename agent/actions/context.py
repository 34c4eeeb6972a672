"""``include_context: true`` on any action: its JSON result gains ``page_context`` (seed 002's
``ActionResult.page_context``), the browser's tab as it is after the action.

Applied once, by the registry (``Operation.run``), so REST, ``/actions`` and ``/batch`` all
honour it. The context is that of the tab the request names (``tab_id``) if it is open, else the
current tab; ``null`` when no browser runs (asking for context never starts one) or the page
does not answer. Image answers (screenshots) are bytes and carry none.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, create_model

from agent.models.base import Result
from agent.models.browser import PageContext

if TYPE_CHECKING:
    from agent.actions.outputs import Output
    from agent.services import Services

LOG = logging.getLogger(__name__)


def wants_context(request: BaseModel) -> bool:
    return getattr(request, "include_context", None) is True


@functools.cache
def _with_context(model: type[Result]) -> type[Result]:
    """``model`` with one more field, ``page_context`` (made once per result model)."""
    extended: type[Result] = create_model(
        model.__name__, __base__=model, page_context=(PageContext | None, None)
    )
    return extended


async def add_page_context(services: Services, request: BaseModel, output: Output) -> Output:
    if not isinstance(output, Result) or "page_context" in type(output).model_fields:
        return output
    context: PageContext | None = None
    if services.browser is not None:
        values = await services.browser.page_context(getattr(request, "tab_id", None))
        context = PageContext(**values) if values is not None else None
    fields: dict[str, Any] = {name: getattr(output, name) for name in type(output).model_fields}
    return _with_context(type(output)).model_construct(**fields, page_context=context)


def seed_fields(result: dict[str, Any]) -> dict[str, Any]:
    """Seed 002's ``ActionResult`` keeps ``page_context`` and ``executed_tab_id`` beside
    ``result``: ``/actions`` and ``/batch`` answers copy them there (``result.page_context``
    stays, so REST and existing clients read it where they did). Empty when the action has none."""
    fields: dict[str, Any] = {}
    context = result.get("page_context")
    if "page_context" in result:
        fields["page_context"] = context
    tab = result.get("tab_id")
    if not isinstance(tab, str) and isinstance(context, dict):
        tab = context.get("tab_id")
    if isinstance(tab, str):
        fields["executed_tab_id"] = tab
    return fields
