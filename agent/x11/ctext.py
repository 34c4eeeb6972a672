"""Decoding COMPOUND_TEXT, the ISO 2022 encoding older clients use for WM_NAME.

Why: xterm, Tk, Motif and Emacs/Lucid titles that leave Latin-1 arrive as COMPOUND_TEXT (with
UTF-8 segments, or JIS/GB/KSC runs) and no _NET_WM_NAME, so the WM_NAME fallback must decode it
or those titles come out as escape sequences. Python has no codec for it; this covers what
Xlib's converters emit: ASCII/Latin-1 by default, ISO 8859 right halves, the 94x94 CJK sets, and
UTF-8 segments. Unknown sets decode as U+FFFD instead of failing.
"""

from __future__ import annotations

ESC = 0x1B

# Final byte of "ESC - F" (a 96-character set in GR) -> Python codec.
_GR96 = {
    ord("A"): "latin-1",
    ord("B"): "iso8859_2",
    ord("C"): "iso8859_3",
    ord("D"): "iso8859_4",
    ord("F"): "iso8859_7",
    ord("G"): "iso8859_6",
    ord("H"): "iso8859_8",
    ord("L"): "iso8859_5",
    ord("M"): "iso8859_9",
}
# Final byte of "ESC $ ( F" / "ESC $ ) F" (a 94x94 set) -> its ISO-2022-JP-2 designation.
_DOUBLE = {ord("A"): b"\x1b$A", ord("B"): b"\x1b$B", ord("@"): b"\x1b$@", ord("C"): b"\x1b$(C"}


def _double(designation: bytes | None, first: int, second: int) -> str:
    if designation is None:
        return "\ufffd"
    data = designation + bytes((first & 0x7F, second & 0x7F)) + b"\x1b(B"
    return data.decode("iso2022_jp_2", "replace")


def decode_compound_text(data: bytes) -> str:
    out: list[str] = []
    gl_double: bytes | None = None  # None: GL is ASCII
    gr: str | bytes | None = "latin-1"  # str: a 96-set codec; bytes: a 94x94 designation
    i, n = 0, len(data)
    while i < n:
        byte = data[i]
        if byte == ESC:
            if data[i + 1 : i + 3] == b"%G":  # a UTF-8 segment, up to ESC % @
                end = data.find(b"\x1b%@", i + 3)
                end = n if end < 0 else end
                out.append(data[i + 3 : end].decode("utf-8", "replace"))
                i = end + 3
                continue
            seq_end = i + 1
            while seq_end < n and 0x20 <= data[seq_end] <= 0x2F:  # intermediate bytes
                seq_end += 1
            inter, final = data[i + 1 : seq_end], data[seq_end] if seq_end < n else 0
            if inter == b"(":
                gl_double = None
            elif inter == b"-":
                gr = _GR96.get(final)
            elif inter in (b"$(", b"$"):
                gl_double = _DOUBLE.get(final, b"")
            elif inter == b"$)":
                gr = _DOUBLE.get(final, b"")
            i = seq_end + 1
            continue
        if byte < 0x80:
            if gl_double is None or byte < 0x21 or byte == 0x7F:
                out.append(chr(byte))
                i += 1
            else:
                out.append(_double(gl_double or None, byte, data[i + 1] if i + 1 < n else 0))
                i += 2
            continue
        if isinstance(gr, bytes):
            out.append(_double(gr or None, byte, data[i + 1] if i + 1 < n else 0))
            i += 2
        else:
            out.append(bytes((byte,)).decode(gr, "replace") if gr else "\ufffd")
            i += 1
    return "".join(out)
