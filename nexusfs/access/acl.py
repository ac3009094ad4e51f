"""POSIX ACLs: the xattr wire format, validation, and the rules that tie an ACL to the mode.

Pure functions over value types; no I/O, no locking. The wire format is Linux's
``system.posix_acl_access`` / ``system.posix_acl_default`` value: a little-endian u32 version
(2) followed by entries of (u16 tag, u16 perm, u32 id). The rules follow POSIX.1e draft 17 as
Linux implements them (fs/posix_acl.c): an ACL with named entries needs a mask; the group
class bits of the mode are the mask (or the owning group's entry when there is no mask);
``chmod`` rewrites the owner, mask and other entries; a new inode inherits its directory's
default ACL, narrowed by the mode it was created with.
"""
from __future__ import annotations

import errno
import struct
from dataclasses import dataclass

from ..types import FsError

ACL_ACCESS = b"system.posix_acl_access"
ACL_DEFAULT = b"system.posix_acl_default"
ACL_NAMES = (ACL_ACCESS, ACL_DEFAULT)

VERSION = 2
USER_OBJ, USER, GROUP_OBJ, GROUP, MASK, OTHER = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
TAG_NAMES = {USER_OBJ: "user::", USER: "user", GROUP_OBJ: "group::", GROUP: "group",
             MASK: "mask", OTHER: "other"}
NO_ID = 0xFFFFFFFF
R, W, X = 4, 2, 1
_HEAD = struct.Struct("<I")
_ENTRY = struct.Struct("<HHI")
# Linux refuses ACLs with more entries than fit a 64 KiB xattr; keep the same bound
MAX_ENTRIES = (65536 - _HEAD.size) // _ENTRY.size


@dataclass(frozen=True, slots=True)
class Entry:
    tag: int
    perm: int
    id: int = NO_ID

    def text(self) -> str:
        p = ("r" if self.perm & R else "-") + ("w" if self.perm & W else "-") + \
            ("x" if self.perm & X else "-")
        if self.tag in (USER, GROUP):
            return f"{TAG_NAMES[self.tag]}:{self.id}:{p}"
        return f"{TAG_NAMES[self.tag]}{p}" if self.tag in (USER_OBJ, GROUP_OBJ) else \
            f"{TAG_NAMES[self.tag]}::{p}"


Acl = tuple[Entry, ...]


def _order(e: Entry) -> tuple[int, int]:
    return (e.tag, e.id if e.tag in (USER, GROUP) else 0)


def decode(value: bytes) -> Acl:
    """Parse and validate an ACL xattr value; EINVAL when it is malformed."""
    if len(value) < _HEAD.size or (len(value) - _HEAD.size) % _ENTRY.size:
        raise FsError(errno.EINVAL, "malformed ACL: bad length")
    (version,) = _HEAD.unpack_from(value)
    if version != VERSION:
        raise FsError(errno.EINVAL, f"malformed ACL: version {version}")
    n = (len(value) - _HEAD.size) // _ENTRY.size
    if n > MAX_ENTRIES:
        raise FsError(errno.EINVAL, "ACL has too many entries")
    entries = []
    for i in range(n):
        tag, perm, qid = _ENTRY.unpack_from(value, _HEAD.size + i * _ENTRY.size)
        if tag not in TAG_NAMES:
            raise FsError(errno.EINVAL, f"malformed ACL: unknown tag {tag:#x}")
        if perm & ~7:
            raise FsError(errno.EINVAL, "malformed ACL: bad permission bits")
        entries.append(Entry(tag, perm, qid if tag in (USER, GROUP) else NO_ID))
    acl = tuple(sorted(entries, key=_order))
    validate(acl)
    return acl


def encode(acl: Acl) -> bytes:
    out = [_HEAD.pack(VERSION)]
    for e in sorted(acl, key=_order):
        out.append(_ENTRY.pack(e.tag, e.perm, e.id))
    return b"".join(out)


def validate(acl: Acl) -> None:
    """Exactly one owner, owning-group and other entry; unique named entries; a mask
    when there are named entries (at most one)."""
    count = {t: 0 for t in TAG_NAMES}
    seen: set[tuple[int, int]] = set()
    for e in acl:
        count[e.tag] += 1
        if e.tag in (USER, GROUP):
            if (e.tag, e.id) in seen:
                raise FsError(errno.EINVAL, f"ACL names {TAG_NAMES[e.tag]} {e.id} twice")
            seen.add((e.tag, e.id))
    if count[USER_OBJ] != 1 or count[GROUP_OBJ] != 1 or count[OTHER] != 1:
        raise FsError(errno.EINVAL, "ACL needs one user::, group:: and other:: entry")
    if count[MASK] > 1:
        raise FsError(errno.EINVAL, "ACL has more than one mask")
    if (count[USER] or count[GROUP]) and not count[MASK]:
        raise FsError(errno.EINVAL, "ACL with named entries needs a mask")


def get(acl: Acl, tag: int) -> Entry | None:
    for e in acl:
        if e.tag == tag:
            return e
    return None


def from_mode(mode: int) -> Acl:
    """The minimal ACL a mode stands for."""
    return (Entry(USER_OBJ, (mode >> 6) & 7), Entry(GROUP_OBJ, (mode >> 3) & 7),
            Entry(OTHER, mode & 7))


def is_minimal(acl: Acl) -> bool:
    """True when the ACL says nothing the mode does not (no named entries, no mask)."""
    return all(e.tag in (USER_OBJ, GROUP_OBJ, OTHER) for e in acl)


def mode_bits(acl: Acl) -> int:
    """The permission bits of the mode an access ACL implies: owner, mask (or owning
    group) and other."""
    owner, other = get(acl, USER_OBJ), get(acl, OTHER)
    group = get(acl, MASK) or get(acl, GROUP_OBJ)
    return (owner.perm << 6) | (group.perm << 3) | other.perm


def chmod(acl: Acl, mode: int) -> Acl:
    """The access ACL after chmod: owner and other entries take the new bits; the mask (or,
    without one, the owning group's entry) takes the group bits."""
    has_mask = get(acl, MASK) is not None
    out = []
    for e in acl:
        if e.tag == USER_OBJ:
            e = Entry(USER_OBJ, (mode >> 6) & 7)
        elif e.tag == OTHER:
            e = Entry(OTHER, mode & 7)
        elif e.tag == MASK or (e.tag == GROUP_OBJ and not has_mask):
            e = Entry(e.tag, (mode >> 3) & 7)
        out.append(e)
    return tuple(out)


def inherit(default: Acl, mode: int) -> tuple[Acl, int]:
    """(access ACL, permission bits) of a new inode created with ``mode`` in a directory with
    default ACL ``default``: the default's owner, mask (or group) and other entries are
    narrowed by the mode's bits (posix_acl_create)."""
    has_mask = get(default, MASK) is not None
    out = []
    for e in default:
        if e.tag == USER_OBJ:
            e = Entry(USER_OBJ, e.perm & (mode >> 6) & 7)
        elif e.tag == OTHER:
            e = Entry(OTHER, e.perm & mode & 7)
        elif e.tag == MASK or (e.tag == GROUP_OBJ and not has_mask):
            e = Entry(e.tag, e.perm & (mode >> 3) & 7)
        out.append(e)
    acl = tuple(out)
    return acl, mode_bits(acl)


def permits(acl: Acl | None, mode: int, owner: int, group: int, uid: int, gids: frozenset[int],
            want: int) -> bool:
    """The kernel's decision (generic_permission without capabilities): may ``uid`` with
    groups ``gids`` have every bit of ``want`` (R|W|X) on an inode with this mode, owner,
    group and (optional) access ACL?"""
    want &= 7
    if uid == owner:
        return not (want & ~(mode >> 6))
    if acl is not None and (mode & 0o070):
        mask = get(acl, MASK)
        mperm = mask.perm if mask is not None else 7
        for e in acl:
            if e.tag == USER and e.id == uid:
                return not (want & ~(e.perm & mperm))
        found = False
        for e in acl:
            if (e.tag == GROUP_OBJ and group in gids) or (e.tag == GROUP and e.id in gids):
                found = True
                perm = e.perm & mperm if (e.tag == GROUP or mask is not None) else e.perm
                if not (want & ~perm):
                    return True
        if found:
            return False
        return not (want & ~get(acl, OTHER).perm)
    if group in gids:
        return not (want & ~(mode >> 3))
    return not (want & ~mode)


def to_text(acl: Acl, user_name=str, group_name=str) -> str:
    """getfacl-style text (for messages and `rebac check` explanations)."""
    lines = []
    for e in acl:
        p = e.text().rsplit(":", 1)[1]
        if e.tag == USER:
            lines.append(f"user:{user_name(e.id)}:{p}")
        elif e.tag == GROUP:
            lines.append(f"group:{group_name(e.id)}:{p}")
        else:
            lines.append(e.text())
    return "\n".join(lines)
