"""/api/categories carries each category's everyday words (`keywords`, a list, maybe empty) for
the pages' category search."""

from support import login_as


async def test_every_category_lists_its_keywords(demo):
    grid = await login_as(demo, "grid_worker")
    status, body = await grid.get("/api/categories")
    assert status == 200
    for item in body["items"]:
        category = demo.ctx.city.categories[item["code"]]
        assert item["keywords"] == list(getattr(category, "keywords", None) or ())
