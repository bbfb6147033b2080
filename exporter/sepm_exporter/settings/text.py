"""A settings file's text: UTF-8 (with or without BOM) or UTF-16 with a BOM, as Windows editors save it."""

from __future__ import annotations

import codecs


def decode_settings(data: bytes, path: object) -> str:
    """The file's text, or ValueError with one line that names the file and says what to do."""
    try:
        if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return data.decode("utf-16")  # Notepad's "Unicode"; the BOM tells the byte order
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
