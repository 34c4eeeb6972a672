"""What an operation needs switched on, checked in one place for REST, /actions and /batch.

Each capability is governed by one configuration switch. ``--exec false`` turns off both
``exec`` (running programs: commands, background processes, app launches) and ``files``
(reading or writing the disk as the desktop user: the files API and the wallpaper's file URLs);
``--accessibility false`` turns off the AT-SPI routes; ``--browser false`` the ``/browser`` routes
(a Chromium the agent starts and drives over CDP). Handlers never check switches themselves:
the generated HTTP handlers call ``require`` from each operation's declaration.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from agent.config import Config
from agent.errors import (
    AccessibilityDisabled,
    BrowserDisabled,
    ExecDisabled,
    FeatureDisabled,
    FilesDisabled,
)


class Capability(StrEnum):
    EXEC = "exec"  # run programs as the desktop user
    FILES = "files"  # read or write files as the desktop user
    ACCESSIBILITY = "accessibility"  # the AT-SPI tree and element actions
    BROWSER = "browser"  # start and drive Chromium over CDP


@dataclass(frozen=True, slots=True)
class Switch:
    """The configuration option that turns a capability on and off."""

    field: str  # the Config attribute
    option: str  # the option's name: --option, COMPUTER_AGENT_OPTION, ``option =`` in a file


SWITCHES: Mapping[Capability, Switch] = {
    Capability.EXEC: Switch("exec_enabled", "exec"),
    Capability.FILES: Switch("exec_enabled", "exec"),
    Capability.ACCESSIBILITY: Switch("accessibility", "accessibility"),
    Capability.BROWSER: Switch("browser", "browser"),
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


REFUSALS: Mapping[Capability, type[FeatureDisabled]] = {
    Capability.EXEC: ExecDisabled,
    Capability.FILES: FilesDisabled,
    Capability.ACCESSIBILITY: AccessibilityDisabled,
    Capability.BROWSER: BrowserDisabled,
}


def refusal(capability: Capability, operation: str) -> FeatureDisabled:
    """The error for a switched-off capability: 403 <CAPABILITY>_DISABLED, the same for every
    capability, and permanent (no Retry-After: only restarting the agent with the option on helps;
    an accessibility bus that is on but not answering stays 503 ACCESSIBILITY_UNAVAILABLE)."""
    switch = SWITCHES[capability].option
    message = (
        f"{operation}: the {capability.value} capability is switched off on this agent (--{switch} false)"
    )
    return REFUSALS[capability](message, details={"capability": capability.value, "option": switch})


def require(capabilities: Iterable[Capability], config: Config, operation: str) -> None:
    """Raise the refusal for the first of ``capabilities`` that is switched off."""
    for capability in capabilities:
        if not enabled(capability, config):
            raise refusal(capability, operation)
