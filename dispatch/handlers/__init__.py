"""HTTP handlers, one module per resource; `routes()` lists them all for the application."""

from dispatch.handlers import (
    actions, addresses, attachments, audit, auth, cases, health, live, pages, reference, reports, route, stats, tickets,
)


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
        *attachments.routes,
        *audit.routes,
        *reference.routes,
        *stats.routes,
        *live.routes,
        *pages.routes,
    ]
