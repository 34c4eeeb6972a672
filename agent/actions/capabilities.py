"""What an operation needs switched on, checked in one place for REST, /actions and /batch.

Each capability is governed by one configuration switch. ``--exec false`` turns off both
``exec`` (running programs: commands, background processes, app launches) and ``files``
(reading or writing the disk as the desktop user: the files API and the wallpaper's file URLs);
``--accessibility false`` turns off the AT-SPI routes. Handlers never check switches themselves:
the generated HTTP handlers call ``require`` from each operation's declaration.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from agent.config import Config
from agent.errors import AccessibilityUnavailable, AgentError, PermissionDenied


class Capability(StrEnum):
    EXEC = "exec"  # run programs as the desktop user
    FILES = "files"  # read or write files as the desktop user
    ACCESSIBILITY = "accessibility"  # the AT-SPI tree and element actions


@dataclass(frozen=True, slots=True)
class Switch:
    """The configuration option that turns a capability on and off."""

    field: str  # the Config attribute
    option: str  # the option's name: --option, COMPUTER_AGENT_OPTION, ``option =`` in a file


SWITCHES: Mapping[Capability, Switch] = {
    Capability.EXEC: Switch("exec_enabled", "exec"),
    Capability.FILES: Switch("exec_enabled", "exec"),
    Capability.ACCESSIBILITY: Switch("accessibility", "accessibility"),
}


@dataclass(frozen=True, slots=True)
class Conditional:
    """A capability an operation needs only for some requests (the wallpaper's file URLs)."""

    capability: Capability
    applies: Callable[[Any], bool]  # given the validated request
    when: str  # for the document: "the url is a file:// URL"
    example: Mapping[str, Any] = field(default_factory=dict)  # a request body it applies to


def enabled(capability: Capability, config: Config) -> bool:
    return bool(getattr(config, SWITCHES[capability].field))


def refusal(capability: Capability, operation: str) -> AgentError:
    """The error for a switched-off capability: 403, or 503 for the accessibility bus as before."""
    switch = SWITCHES[capability].option
    message = (
        f"{operation}: the {capability.value} capability is switched off on this agent (--{switch} false)"
    )
    details = {"capability": capability.value, "option": switch}
    if capability is Capability.ACCESSIBILITY:
        return AccessibilityUnavailable(message, details=details)
    return PermissionDenied(message, details=details)


def require(capabilities: Iterable[Capability], config: Config, operation: str) -> None:
    """Raise the refusal for the first of ``capabilities`` that is switched off."""
    for capability in capabilities:
        if not enabled(capability, config):
            raise refusal(capability, operation)
