"""The live channels: the desktop event stream, the WebSocket command channel and its tickets."""
