"""Request and result models of the window, clipboard, launch, environment and wallpaper actions.

Field names follow seed 003 (``window_id``, ``app``, ``url``, ``text``; a window's ``class``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AliasChoices, ConfigDict, Field

from agent.models.base import ALONG_X, ALONG_Y, AT_X, AT_Y, Coordinate, Request, Result, Success

_WINDOW_ID = Field(
    min_length=1,
    max_length=20,
    description="Window id as listed by GET /desktop/windows, e.g. '0x2200003' (decimal ids work too)",
    examples=["0x2200003"],
)


# -- windows ---------------------------------------------------------------------------------
class ListWindowsRequest(Request):
    type: Literal["list_windows"] = "list_windows"


class FrameExtents(Result):
    """Decoration the window manager draws around the client area, in pixels."""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    left: int
    right: int
    top: int
    bottom: int


class Window(Result):
    # Window.model_validate(info) reads the X side's WindowInfo (a docstring would enter the document).
    model_config = ConfigDict(
        frozen=True, serialize_by_alias=True, validate_by_name=True, from_attributes=True
    )

    # Read from WindowInfo.hex_id (the X side's id is a number); only the answer's schema is documented.
    id: str = Field(
        validation_alias=AliasChoices("hex_id", "id"), description="X window id in hex, e.g. '0x2200003'"
    )
    title: str = Field(description="_NET_WM_NAME (UTF-8), else WM_NAME")
    wm_class: str = Field(alias="class", description="WM_CLASS class, e.g. 'XTerm', 'Firefox'")
    instance: str = Field(description="WM_CLASS instance, e.g. 'xterm', 'Navigator'")
    x: Annotated[int, AT_X] = Field(description="Client area's left edge in screen pixels (inside the frame)")
    y: Annotated[int, AT_Y] = Field(
        description="Client area's top edge in screen pixels (below the title bar)"
    )
    width: Annotated[int, ALONG_X]
    height: Annotated[int, ALONG_Y]
    frame: FrameExtents
    pid: int | None = Field(
        description="_NET_WM_PID, else the PID the X server knows for the window's client "
        "(X-Resource); null for remote clients"
    )
    focused: bool
    minimized: bool
    maximized: bool
    desktop: int | None = Field(description="Virtual desktop (workspace) index; -1 means all desktops")


class WindowList(Result):
    windows: list[Window]


class _WindowRef(Request):
    window_id: str = _WINDOW_ID


class FocusWindowRequest(_WindowRef):
    type: Literal["focus_window"] = "focus_window"


class WindowSizeRequest(_WindowRef):
    type: Literal["window_size"] = "window_size"


class WindowPositionRequest(_WindowRef):
    type: Literal["window_position"] = "window_position"


class ResizeWindowRequest(_WindowRef):
    type: Literal["resize_window"] = "resize_window"
    width: Annotated[Coordinate, ALONG_X] = Field(
        ge=1, le=32767, description="New client-area width in pixels"
    )
    height: Annotated[Coordinate, ALONG_Y] = Field(
        ge=1, le=32767, description="New client-area height in pixels"
    )


class MoveWindowRequest(_WindowRef):
    type: Literal["move_window"] = "move_window"
    x: Annotated[Coordinate, AT_X] = Field(
        ge=-32768, le=32767, description="New client-area left edge (as read from /position)"
    )
    y: Annotated[Coordinate, AT_Y] = Field(
        ge=-32768, le=32767, description="New client-area top edge (as read from /position)"
    )


class MaximizeWindowRequest(_WindowRef):
    type: Literal["maximize_window"] = "maximize_window"


class MinimizeWindowRequest(_WindowRef):
    type: Literal["minimize_window"] = "minimize_window"


class CloseWindowRequest(_WindowRef):
    type: Literal["close_window"] = "close_window"


class WindowSize(Result):
    width: Annotated[int, ALONG_X]
    height: Annotated[int, ALONG_Y]


class WindowPosition(Result):
    x: Annotated[int, AT_X]
    y: Annotated[int, AT_Y]


# -- clipboard -------------------------------------------------------------------------------
SelectionName = Literal["clipboard", "primary"]
_CLIPBOARD: SelectionName = "clipboard"
_SELECTION = Field(
    default=_CLIPBOARD,
    description="'clipboard' (ctrl+c / ctrl+v) or 'primary' (the selected text, middle-click paste)",
)


class GetClipboardRequest(Request):
    type: Literal["get_clipboard"] = "get_clipboard"
    selection: SelectionName = _SELECTION


class SetClipboardRequest(Request):
    type: Literal["set_clipboard"] = "set_clipboard"
    text: str = Field(max_length=32 * 1024 * 1024, description="Text to place in the clipboard (any Unicode)")
    selection: SelectionName = _SELECTION


class ClipboardText(Result):
    text: str = Field(description="The clipboard's text; empty when it is empty or holds no text")


# -- apps, environment, wallpaper ------------------------------------------------------------
class LaunchRequest(Request):
    type: Literal["launch"] = "launch"
    app: str = Field(
        min_length=1,
        max_length=65536,
        description="Command line, split with shell-like quoting and run without a shell, "
        "e.g. 'firefox' or \"xfce4-terminal --title 'My T'\"",
    )
    wait_for_window: bool = Field(default=False, description="Answer once the app's first window is mapped")
    timeout: float = Field(default=10.0, gt=0, le=120, description="Seconds to wait for the window")


class Launched(Success):
    pid: int = Field(description="PID of the started program")
    window_id: str | None = Field(default=None, description="With wait_for_window: the app's first window")
    log_path: str = Field(description="File receiving the app's stdout and stderr")


class EnvironmentRequest(Request):
    type: Literal["environment"] = "environment"


class ScreenDetails(Result):
    width: int
    height: int
    width_mm: int
    height_mm: int
    depth: int
    dpi: float


class KeyboardDetails(Result):
    rules: str
    model: str
    layout: str
    variant: str
    options: str


class Environment(Result):
    display: str = Field(description="X display name, e.g. ':0'")
    display_server: Literal["x11"]
    session_type: str = Field(description="XDG_SESSION_TYPE of the session (x11)")
    desktop_environment: str | None = Field(description="XDG_CURRENT_DESKTOP, or inferred from the WM")
    window_manager: str | None = Field(description="Name the EWMH window manager announces; null: none runs")
    user: str
    uid: int
    home: str
    screen: ScreenDetails
    dpi: float = Field(description="Xft.dpi when set, else from the screen's physical size")
    keyboard_layout: str = Field(description="XKB layout(s), e.g. 'us' or 'us,de'")
    keyboard: KeyboardDetails
    accessibility_bus: bool = Field(description="Whether the AT-SPI bus answered")
    accessibility_bus_error: str | None = None


class WallpaperRequest(Request):
    type: Literal["set_wallpaper"] = "set_wallpaper"
    url: str = Field(
        min_length=1,
        max_length=48 * 1024 * 1024,
        description=(
            "data:, file:/// or http(s) URL of an image (PNG, JPEG, GIF, WebP, BMP, TIFF). A file is read "
            "like GET /files (as the desktop user, within --files-allowed-roots; 403 with --exec false); "
            "http(s) only with --wallpaper-fetch-urls, never from loopback or link-local addresses"
        ),
    )


class WallpaperSet(Success):
    method: Literal["xfconf", "root-pixmap"] = Field(description="How the wallpaper was applied")
    width: int = Field(description="Width of the source image")
    height: int = Field(description="Height of the source image")
