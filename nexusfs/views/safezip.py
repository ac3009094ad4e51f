"""Checks on zip containers (OOXML, EPUB, ODF) before any library inflates them.

Python's ``zipfile`` never inflates a member past the size its central directory declares
(it stops at ``file_size`` and checks the CRC), so the declared sizes are a trustworthy upper
bound on what a library reading through ``zipfile`` can be made to inflate. A container whose
declared total or ratio is absurd is refused before parsing; RLIMIT_AS stays the backstop.
"""
from __future__ import annotations

import io
import zipfile

from .limits import Limits, ParseFailure, human_bytes


def open_zip(data: bytes, limits: Limits, what: str) -> zipfile.ZipFile:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as e:
        raise ParseFailure(f"not a valid {what} (not a readable zip container: {e})") from None
    check_zip(zf, limits, what)
    return zf


def check_zip(zf: zipfile.ZipFile, limits: Limits, what: str) -> None:
    infos = zf.infolist()
    if len(infos) > limits.max_members:
        raise ParseFailure(f"it has {len(infos):,} zip members, more than the limit of "
                           f"{limits.max_members:,}")
    total = 0
    for info in infos:
        total += info.file_size
        if info.file_size > 16 * 1024 * 1024:
            ratio = info.file_size / max(info.compress_size, 1)
            if ratio > limits.max_ratio:
                raise ParseFailure(
                    f"it looks like a zip bomb: member {info.filename!r} inflates "
                    f"{human_bytes(info.compress_size)} to {human_bytes(info.file_size)} "
                    f"(ratio {ratio:,.0f}, limit {limits.max_ratio})")
    if total > limits.max_unzipped:
        raise ParseFailure(f"it inflates to {human_bytes(total)}, more than the limit of "
                           f"{human_bytes(limits.max_unzipped)} (zip bomb?)")


def check_zip_bytes(data: bytes, limits: Limits, what: str) -> None:
    """Checks a container that a library will open itself; bad zips are left to the library."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as e:
        raise ParseFailure(f"not a valid {what} (not a readable zip container: {e})") from None
    with zf:
        check_zip(zf, limits, what)
