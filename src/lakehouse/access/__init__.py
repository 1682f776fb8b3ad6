"""Access control and audit: tokens, roles, grants, PII masking, and the audit log.

The API server authenticates every request with :meth:`Access.authenticate`, asks
:class:`Access` what the caller may read and which columns it sees masked, and records every
call in :class:`AuditLog` (the Delta table ``system.audit_log``).
"""

from lakehouse.access.audit import AUDIT_LOG, AuditLog
from lakehouse.access.policy import ACTIONS, PRIVILEGES, ROLES, Access, Role
from lakehouse.access.tokens import Principal

__all__ = [
    "ACTIONS",
    "AUDIT_LOG",
    "PRIVILEGES",
    "ROLES",
    "Access",
    "AuditLog",
    "Principal",
    "Role",
]
