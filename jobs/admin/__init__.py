"""The operators' admin: one module per area; importing them registers their pages."""

from jobs.admin import jobs, publishing, webhooks  # noqa: F401
