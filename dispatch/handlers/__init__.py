"""HTTP handlers, one module per resource; `routes()` lists them all for the application."""

from dispatch.handlers import auth, cases, health, reference, reports, route, tickets


def routes() -> list:
    return [
        *health.routes,
        *auth.routes,
        *reports.routes,
        *tickets.routes,
        *route.routes,
        *cases.routes,
        *reference.routes,
    ]
