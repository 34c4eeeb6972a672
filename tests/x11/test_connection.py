"""The X connection traps protocol errors per call and stays usable afterwards."""

from __future__ import annotations

import pytest
from Xlib.display import Display

from agent.session.devdesktop import DevDesktop
from agent.x11.connection import XConnection, XProtocolError

pytestmark = pytest.mark.x11


async def test_an_asynchronous_x_error_is_raised_as_a_typed_error(desktop: DevDesktop) -> None:
    connection = XConnection(desktop.display)

    def configure_a_window_that_does_not_exist(display: Display) -> None:
        display.create_resource_object("window", 0x7FFFF1).configure(x=1)

    try:
        with pytest.raises(XProtocolError) as caught:
            await connection.run(configure_a_window_that_does_not_exist)
        assert caught.value.details == {"x_error": "BadWindow", "resource_id": "0x7ffff1"}
        size = await connection.run(lambda display: display.screen().width_in_pixels)
        assert size == 1280
    finally:
        await connection.close()
