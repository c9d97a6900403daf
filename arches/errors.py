"""Exceptions shared by every layer; the lowest layer owns them so that nothing imports upward.

Every error a user can provoke is a :class:`PtshimError` whose message names what is wrong.
"""


class PtshimError(Exception):
    """Base of all ptshim errors that are reported to the user (CLI exit code 2)."""


class BadInput(PtshimError):
    """Input that the emulated kernel or machine rejects (bad address, size, PFN, op...)."""


class UnknownArch(BadInput):
    """A configuration name that is not in the registry."""


class OutOfMemory(PtshimError):
    """The frame allocator could not (or was told not to) satisfy an allocation: -ENOMEM."""


class PhysMemError(PtshimError):
    """Misuse of emulated physical memory: double free, free of an unallocated frame,
    access to a frame that is not allocated (use after free)."""


class LockError(PtshimError):
    """Misuse of an emulated spinlock: recursive lock, unlock of a lock not held,
    freeing a table whose split lock is still held."""


class CheckFailed(PtshimError):
    """A consistency check failed (check_mm, a conformance assertion, a divergence)."""


class TlbError(PtshimError):
    """A TLB rule was broken: a translation left stale at the end of a call site, a
    page-table frame freed while a walk cache may reference it, or (arm64) a
    break-before-make violation."""
