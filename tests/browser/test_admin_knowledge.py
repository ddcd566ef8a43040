"""/admin#knowledge in a browser: an admin searches the knowledge base as the operators do,
edits an article (the operators get the next version), adds one, is shown every problem of a
broken one (nothing stored), reads an article's versions, deletes one (the form opens and closes
from the keyboard too); sees what the operators flagged on the review list with their notes; is
told when someone else changed an article first."""

from __future__ import annotations

from urllib.parse import quote

from browser_support import client_as, fill_dialog, open_page, screenshot, user, wait_until

DEMO_ARTICLE = "KB-SB-001"  # 灵活就业人员怎么交社保 (knowledge.yaml)
FLAGGED = "KB-LJ-001"


async def open_knowledge(browser, server):
    admin = user(server, "admin")
    page, guard = await open_page(browser, server, admin["username"], admin["password"], "/admin")
    await page.get_by_role("tab", name="知识库").click()
    await page.get_by_role("heading", name="全部条目").wait_for()
    return admin, page, guard


async def test_an_admin_searches_edits_adds_and_deletes_articles(browser, server):
    admin, page, guard = await open_knowledge(browser, server)
    api = await client_as(server, admin["username"])
    _, before = await api.get(f"/api/knowledge/{DEMO_ARTICLE}")

    await page.get_by_label("搜索知识库").fill("自由职业社保在哪里交")
    await page.get_by_label("搜索知识库").press("Enter")
    await page.get_by_text("找到").wait_for()
    first = page.locator("table.kb-table tbody tr").first
    assert await first.get_attribute("data-article") == DEMO_ARTICLE
    await screenshot(page, "admin-knowledge-search")

    # Edit the answer: the operators are served the next version.
    answer = "灵活就业人员可在“浙里办”APP搜索“灵活就业参保”在线登记，也可到街道社保窗口办理。"
    await first.get_by_role("button", name="修改").click()
    await fill_dialog(page, "#kb-answer", answer)
    _, edited = await api.get(f"/api/knowledge/{DEMO_ARTICLE}")
    assert edited["answer"] == answer and edited["version"] == before["version"] + 1
    assert edited["questions"] == before["questions"] and edited["category"] == before["category"]
    row = page.locator(f'tr[data-article="{DEMO_ARTICLE}"]')
    await row.get_by_text(f"第 {edited['version']} 版").wait_for()

    # Its versions, newest first, with who changed it.
    await row.get_by_role("button", name="版本历史").click()
    history = page.locator("dialog.dlg")
    newest = history.locator(f'article[data-version="{edited["version"]}"]')
    await newest.get_by_text(admin["username"]).wait_for()
    assert await history.locator(f'article[data-version="{before["version"]}"]').count() == 1
    await history.get_by_role("button", name="关闭").click()
    await history.wait_for(state="detached")

    # From the keyboard: the form opens on its first field, Esc leaves it.
    await page.get_by_role("button", name="新增条目").focus()
    await page.keyboard.press("Enter")
    dialog = page.locator("dialog.dlg")
    await wait_until(page, "() => document.activeElement && document.activeElement.id === 'kb-id'")
    await page.keyboard.press("Escape")
    await dialog.wait_for(state="detached")

    # A new article, found by the operators' search.
    await page.get_by_role("button", name="新增条目").click()
    await dialog.locator("#kb-id").fill("KB-DOG-001")
    await dialog.locator("#kb-title").fill("养犬登记怎么办")
    await dialog.locator("#kb-questions").fill("养狗要办证吗\n狗证在哪里办")
    await dialog.locator("#kb-tags").fill("养犬、犬只登记")
    await fill_dialog(page, "#kb-answer", "带犬只免疫证明到所在街道的犬类登记点办理，也可在“浙里办”预约。")
    _, found = await api.get("/api/knowledge?q=" + quote("狗证在哪里办"))
    assert found["items"][0]["id"] == "KB-DOG-001" and found["items"][0]["tags"] == ["养犬", "犬只登记"]
    await page.locator('tr[data-article="KB-DOG-001"]').wait_for()

    # An article without an answer: every problem is listed beside the form, nothing is stored.
    await page.get_by_role("button", name="新增条目").click()
    await dialog.locator("#kb-id").fill("KB-EMPTY-001")
    await dialog.locator("#kb-title").fill("没有答复的条目")
    await dialog.locator("#kb-questions").fill("这个怎么办")
    await dialog.locator("button[type=submit]").click()
    problems = dialog.locator(".problems")
    await problems.get_by_text("条目有 1 处问题，未保存").wait_for()
    assert await problems.get_by_role("listitem").all_inner_texts() == ["缺少 'answer'（须为非空字符串）"]
    await screenshot(page, "admin-knowledge-problems")
    status, _ = await api.get("/api/knowledge/KB-EMPTY-001")
    assert status == 404
    await dialog.get_by_role("button", name="取消").click()
    await dialog.wait_for(state="detached")

    # Delete, after confirming.
    await page.locator('tr[data-article="KB-DOG-001"]').get_by_role("button", name="删除").click()
    await page.locator("dialog.dlg").get_by_role("button", name="删除").click()
    await page.locator('tr[data-article="KB-DOG-001"]').wait_for(state="detached")
    status, _ = await api.get("/api/knowledge/KB-DOG-001")
    assert status == 404
    _, versions = await api.get("/api/admin/knowledge/KB-DOG-001/history")
    assert [(v["version"], v["deleted"]) for v in versions["items"]] == [(1, False), (2, True)]
    guard.assert_clean(allow_console=("422",))


async def test_the_review_list_shows_flagged_articles_and_a_stale_edit_is_refused(browser, server):
    operator = await client_as(server, user(server, "operator")["username"])
    status, _ = await operator.post(f"/api/knowledge/{FLAGGED}/flag", {"note": "投放时间已调整为晚上七点到九点"})
    assert status == 201
    admin, page, guard = await open_knowledge(browser, server)
    flagged = page.locator(f'.kb-review[data-article="{FLAGGED}"]')
    await flagged.get_by_text("被标记有误").wait_for()
    assert await flagged.get_by_text("投放时间已调整为晚上七点到九点").count() == 1
    assert await page.locator(".kb-review").first.get_attribute("data-article") == FLAGGED  # marked wrong first
    await screenshot(page, "admin-knowledge-review")

    # Someone else saves a new version while the dialog is open: the page says so and reloads.
    await flagged.get_by_role("button", name="修改").click()
    dialog = page.locator("dialog.dlg")
    await dialog.locator("#kb-answer").wait_for()
    api = await client_as(server, admin["username"])
    _, seen = await api.get(f"/api/knowledge/{FLAGGED}")
    body = {k: seen[k] for k in ("title", "questions", "answer", "tags")}
    status, _ = await api.request("PUT", f"/api/admin/knowledge/{FLAGGED}", {**body, "version": seen["version"]})
    assert status == 200
    await dialog.locator("#kb-answer").fill("晚上七点到九点定时定点投放。")
    await dialog.locator("button[type=submit]").click()
    await dialog.get_by_role("heading", name="该条目已被他人修改").wait_for()
    await dialog.get_by_role("button", name="重新加载").click()
    await dialog.wait_for(state="detached")
    await wait_until(page, "(v) => !!document.querySelector(`tr[data-article='KB-LJ-001']`)?.textContent.includes(`第 ${v} 版`)",
                     seen["version"] + 1)
    _, kept = await api.get(f"/api/knowledge/{FLAGGED}")
    assert kept["answer"] == seen["answer"] and kept["version"] == seen["version"] + 1
    guard.assert_clean(allow_console=("409",))


async def test_an_older_version_is_restored_in_one_click_as_a_new_version(browser, server):
    admin, page, guard = await open_knowledge(browser, server)
    api = await client_as(server, admin["username"])
    _, first = await api.get(f"/api/knowledge/{DEMO_ARTICLE}")
    status, edited = await api.request("PUT", f"/api/admin/knowledge/{DEMO_ARTICLE}",
                                       {**{k: first[k] for k in ("title", "questions", "answer", "category", "department",
                                                                 "valid_from", "valid_to", "tags")},
                                        "answer": "一条写错的答复。", "version": first["version"]})
    assert status == 200, edited
    await page.reload()
    await page.get_by_role("tab", name="知识库").click()
    row = page.locator(f'tr[data-article="{DEMO_ARTICLE}"]')
    await row.get_by_text(f"第 {edited['version']} 版").wait_for()
    await row.get_by_role("button", name="版本历史").click()
    history = page.locator("dialog.dlg")
    assert await history.locator(f'article[data-version="{edited["version"]}"] [data-restore]').count() == 0  # current
    await history.locator(f'article[data-version="{first["version"]}"]').get_by_role("button", name="恢复为此版本").click()
    await history.wait_for(state="detached")
    await row.get_by_text(f"第 {edited['version'] + 1} 版").wait_for()
    _, restored = await api.get(f"/api/knowledge/{DEMO_ARTICLE}")
    assert restored["answer"] == first["answer"] and restored["version"] == edited["version"] + 1
    _, versions = await api.get(f"/api/admin/knowledge/{DEMO_ARTICLE}/history")
    assert versions["items"][-1]["note"] == f"恢复第 {first['version']} 版"
    assert [v["answer"] for v in versions["items"]][-2] == "一条写错的答复。"  # the history keeps every step
    guard.assert_clean()
