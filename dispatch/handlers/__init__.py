"""HTTP handlers, one module per resource; `routes()` lists them all for the application."""

from dispatch.handlers import (
    actions, addresses, admin, admin_config, assist, attachments, audit, auth, basemap, calendar, cases, catalogue,
    health, knowledge, live, openapi, pages, reference, reports, reveal, route, stats, tickets, trend,
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
        *reveal.routes,
        *attachments.routes,
        *audit.routes,
        *reference.routes,
        *basemap.routes,
        *calendar.routes,
        *trend.routes,
        *stats.routes,
        *admin.routes,
        *catalogue.routes,
        *assist.routes,
        *knowledge.routes,
        *admin_config.routes,
        *openapi.routes,
        *live.routes,
        *pages.routes,
    ]
