"""computer-agent: the computer command service inside a cloud desktop VM.

Importing this package touches no X server, D-Bus or network (tests/unit/test_import.py).
"""

__version__ = "0.1.0"
