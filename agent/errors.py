"""The one error hierarchy of the agent.

Services raise these; the HTTP layer turns them into the JSON envelope in one middleware
(``agent.api.middleware``), which marks every such answer with ``X-Computer-Agent-Error: <code>``
so a proxy in front can tell the agent's 404 from its own. Nothing below the API returns an
error dict. A class marked ``abstract`` is never raised itself: its subclasses' codes say what is
missing, refused or conflicting.

    AgentError                 500 INTERNAL (a bug)
    ├── InvalidArgument        400 INVALID_ARGUMENT   bad body, field, coordinate, key, button, type
    ├── Unauthenticated        401 UNAUTHENTICATED
    ├── PermissionDenied       403 (abstract)         each refusal names itself:
    │   ├── FilePermissionDenied     FILE_PERMISSION_DENIED  the desktop user may not
    │   ├── PathNotAllowed           PATH_NOT_ALLOWED        outside the allowed roots
    │   ├── HostNotAllowed           HOST_NOT_ALLOWED        a Host or Origin the agent does not answer for
    │   ├── UrlSchemeNotAllowed      URL_SCHEME_NOT_ALLOWED  javascript:/file: in the browser (an option allows)
    │   └── FeatureDisabled          (abstract) switched off by an option: permanent, never retry
    │       ├── ExecDisabled, FilesDisabled, AccessibilityDisabled   EXEC_/FILES_/ACCESSIBILITY_DISABLED
    │       ├── UrlFetchDisabled     URL_FETCH_DISABLED      http(s) wallpaper URLs
    │       └── BrowserDisabled      BROWSER_DISABLED        the /browser routes (--browser false)
    ├── NotFound               404 (abstract)         what is missing is in the code:
    │   ├── RouteNotFound            ROUTE_NOT_FOUND         no such route (not "no such computer")
    │   ├── WindowNotFound           WINDOW_NOT_FOUND        (BadWindow, BadDrawable: it closed)
    │   ├── ApplicationNotFound      APPLICATION_NOT_FOUND   no accessible application matches app=
    │   ├── ElementNotFound          ELEMENT_NOT_FOUND       no accessible element (any more)
    │   ├── ProcessNotFound          PROCESS_NOT_FOUND       no managed process with that id
    │   ├── LaunchProgramNotFound    PROGRAM_NOT_FOUND       nothing to launch by that name
    │   ├── FileNotFound             FILE_NOT_FOUND
    │   └── TabNotFound              TAB_NOT_FOUND           no open browser tab with that id
    ├── MethodNotAllowed       405 METHOD_NOT_ALLOWED
    ├── Conflict               409 (abstract)         the request conflicts with current state:
    │   ├── WindowStateConflict      WINDOW_STATE_CONFLICT   not in the state the request needs (BadMatch)
    │   ├── ProcessStateConflict     PROCESS_STATE_CONFLICT  exited, stdin closed or full
    │   ├── ElementStateConflict     ELEMENT_STATE_CONFLICT  not showing, refused the action
    │   ├── ElementCovered           ELEMENT_COVERED         another window covers it
    │   ├── ApplicationRefused       APPLICATION_REFUSED     an unexpected D-Bus error from the app
    │   ├── KeymapFull               KEYMAP_FULL             no keycode left to bind a character to
    │   ├── FileConflict             FILE_CONFLICT           exists, is a folder, not empty...
    │   ├── LaunchFailed             LAUNCH_FAILED           the app exited before showing a window
    │   ├── LastTab                  LAST_TAB                closing it would close the browser
    │   └── BrowserRefused           BROWSER_REFUSED         Chromium refused a command (the page changed)
    ├── RequestTimeout         408 REQUEST_TIMEOUT    the client stopped sending its request body
    ├── PayloadTooLarge        413 PAYLOAD_TOO_LARGE
    ├── UnsupportedMediaType   415 UNSUPPORTED_MEDIA_TYPE  a body in a type a web page could send
    ├── TooManyRequests        429 TOO_MANY_REQUESTS  (Retry-After)
    ├── Unavailable            503                    (Retry-After)
    │   ├── DisplayUnavailable        DISPLAY_UNAVAILABLE
    │   ├── WindowManagerUnavailable  WINDOW_MANAGER_UNAVAILABLE (no EWMH window manager runs)
    │   ├── AccessibilityUnavailable  ACCESSIBILITY_UNAVAILABLE
    │   └── BrowserClosed             BROWSER_CLOSED (the browser exited; the next call starts a new one)
    ├── DeadlineExceeded       504 TIMEOUT
    └── XProtocolError         500 INTERNAL           any other X error: a request the agent got wrong

The X errors are made from python-xlib's (and mss's) in one place, ``agent.x11.connection``.
"""

from __future__ import annotations

from typing import Any, ClassVar


class AgentError(Exception):
    """Base class: knows its HTTP status, its error code and optional details."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "INTERNAL"
    default_retry_after: ClassVar[float | None] = None
    abstract: ClassVar[bool] = False  # set in a class's own body: never raised, only its subclasses

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A subclass of an abstract class names itself: it may not inherit the bare code."""
        super().__init_subclass__(**kwargs)
        if "abstract" not in cls.__dict__:
            cls.abstract = False
        parent = cls.__mro__[1]
        if not cls.abstract and getattr(parent, "abstract", False) and "code" not in cls.__dict__:
            raise TypeError(
                f"{cls.__name__} must set its own code (its parent {parent.__name__} is abstract)"
            )

    def __init__(
        self,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}
        self.retry_after = retry_after if retry_after is not None else self.default_retry_after


class InvalidArgument(AgentError):
    status = 400
    code = "INVALID_ARGUMENT"


class Unauthenticated(AgentError):
    status = 401
    code = "UNAUTHENTICATED"


class PermissionDenied(AgentError):
    status = 403
    code = "PERMISSION_DENIED"
    abstract = True


class FilePermissionDenied(PermissionDenied):
    code = "FILE_PERMISSION_DENIED"


class PathNotAllowed(PermissionDenied):
    code = "PATH_NOT_ALLOWED"


class HostNotAllowed(PermissionDenied):
    code = "HOST_NOT_ALLOWED"


class FeatureDisabled(PermissionDenied):
    """Switched off by the agent's configuration: a permanent answer (no Retry-After)."""

    code = "FEATURE_DISABLED"
    abstract = True


class ExecDisabled(FeatureDisabled):
    code = "EXEC_DISABLED"


class FilesDisabled(FeatureDisabled):
    code = "FILES_DISABLED"


class AccessibilityDisabled(FeatureDisabled):
    code = "ACCESSIBILITY_DISABLED"


class UrlFetchDisabled(FeatureDisabled):
    code = "URL_FETCH_DISABLED"


class BrowserDisabled(FeatureDisabled):
    code = "BROWSER_DISABLED"


class UrlSchemeNotAllowed(PermissionDenied):
    code = "URL_SCHEME_NOT_ALLOWED"


class NotFound(AgentError):
    status = 404
    code = "NOT_FOUND"
    abstract = True


class RouteNotFound(NotFound):
    code = "ROUTE_NOT_FOUND"


class WindowNotFound(NotFound):
    """A window that does not exist (any more), named by its id ("0x2200003")."""

    code = "WINDOW_NOT_FOUND"

    def __init__(self, window_id: str, why: str, **details: Any) -> None:
        super().__init__(f"no window {window_id} ({why})", details={"window_id": window_id, **details})


class ApplicationNotFound(NotFound):
    code = "APPLICATION_NOT_FOUND"


class ElementNotFound(NotFound):
    code = "ELEMENT_NOT_FOUND"


class ProcessNotFound(NotFound):
    code = "PROCESS_NOT_FOUND"


class LaunchProgramNotFound(NotFound):
    code = "PROGRAM_NOT_FOUND"


class FileNotFound(NotFound):
    code = "FILE_NOT_FOUND"


class TabNotFound(NotFound):
    code = "TAB_NOT_FOUND"


class MethodNotAllowed(AgentError):
    status = 405
    code = "METHOD_NOT_ALLOWED"


class Conflict(AgentError):
    status = 409
    code = "CONFLICT"
    abstract = True


class ProcessStateConflict(Conflict):
    code = "PROCESS_STATE_CONFLICT"


class ElementStateConflict(Conflict):
    code = "ELEMENT_STATE_CONFLICT"


class ElementCovered(Conflict):
    code = "ELEMENT_COVERED"


class FileConflict(Conflict):
    code = "FILE_CONFLICT"


class LaunchFailed(Conflict):
    code = "LAUNCH_FAILED"


class LastTab(Conflict):
    code = "LAST_TAB"


class BrowserRefused(Conflict):
    """Chromium refused a command the agent believed valid (the page changed under it)."""

    code = "BROWSER_REFUSED"


class WindowStateConflict(Conflict):
    """The window exists but is not in the state the request needs (unmapped for a focus, say);
    ``window_id`` is None when the failed X request was about no particular window."""

    code = "WINDOW_STATE_CONFLICT"

    def __init__(self, window_id: str | None, x_error: str) -> None:
        subject = f"window {window_id}" if window_id else "the window or screen area it named"
        super().__init__(
            f"the X server refused the request: {subject} is not in the state it needs ({x_error}); "
            "it may have changed meanwhile, retry",
            details={"window_id": window_id, "x_error": x_error},
        )


class RequestTimeout(AgentError):
    status = 408
    code = "REQUEST_TIMEOUT"


class PayloadTooLarge(AgentError):
    status = 413
    code = "PAYLOAD_TOO_LARGE"


class UnsupportedMediaType(AgentError):
    status = 415
    code = "UNSUPPORTED_MEDIA_TYPE"


class TooManyRequests(AgentError):
    status = 429
    code = "TOO_MANY_REQUESTS"
    default_retry_after = 1.0


class Unavailable(AgentError):
    status = 503
    code = "UNAVAILABLE"
    default_retry_after = 1.0


class DisplayUnavailable(Unavailable):
    code = "DISPLAY_UNAVAILABLE"


class WindowManagerUnavailable(Unavailable):
    code = "WINDOW_MANAGER_UNAVAILABLE"


class AccessibilityUnavailable(Unavailable):
    code = "ACCESSIBILITY_UNAVAILABLE"


class BrowserClosed(Unavailable):
    code = "BROWSER_CLOSED"
    default_retry_after = 1.0


class DeadlineExceeded(AgentError):
    status = 504
    code = "TIMEOUT"


class XProtocolError(AgentError):
    """The X server answered an error no class above explains (BadValue, BadAtom, ...): a bug."""

    def __init__(self, x_error: str, resource_id: str | None) -> None:
        super().__init__(
            f"X server error {x_error}", details={"x_error": x_error, "resource_id": resource_id}
        )
