"""HTTP handlers, one module per resource; `routes()` lists them all for the application."""

from dispatch.handlers import (
    actions, addresses, admin, attachments, audit, auth, cases, health, live, openapi, pages, reference, reports,
    reveal, route, stats, tickets,
)
from dispatch.handlers import admin_config


def routes() -> list:
    return [
        *health.routes,
        *auth.routes,
        *reports.routes,
        *tickets.routes,
        *route.routes,
        *addresses.routes,
        *cases.routes,
        *actions.routes,
        *reveal.routes,
        *attachments.routes,
        *audit.routes,
        *reference.routes,
        *admin_config.routes,
        *stats.routes,
        *admin.routes,
        *openapi.routes,
        *live.routes,
        *pages.routes,
    ]
