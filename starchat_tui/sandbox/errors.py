"""Errors the sandbox raises: a run refused for want of a sandbox, and a sandbox that failed to start."""

from __future__ import annotations

from ..errors import StarchatError, UsageError


class UnsafeRunRefused(UsageError):
    """No real sandbox is available and the caller did not confirm running without one."""


class SandboxError(StarchatError):
    """The sandbox itself could not be set up (not the snippet failing). Exit code 1."""


class WorkdirUnusable(UsageError):
    """A work folder the sandbox cannot use here (missing, owned by another uid, out of its reach)."""
