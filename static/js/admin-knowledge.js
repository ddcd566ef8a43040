// 知识库: what the 12345 operators are shown while they take a call (SPEC §9). On top the
// articles to review (past valid_to, never used, or marked wrong by an operator, with their
// notes); below every current article, searched as the operators search. Each article is
// added, changed and deleted as a new version (the version seen is sent: 409 when someone
// else changed it first; 422 lists every problem), and its versions are listed with who and when.
import { ApiError, formatTime, request, toast } from "./api.js";
import { add, el } from "./dom.js";
import { errorBox, heading, input, loadKind, problemsBox, select, words } from "./admin-common.js";
import { confirmDialog, formDialog } from "./case-detail.js";

const REASON_NAMES = { expired: "已过期", never_used: "从未使用", marked_wrong: "被标记有误" };

function period(a) {
  if (!a.valid_from && !a.valid_to) return "长期有效";
  return `${a.valid_from || "不限"} 至 ${a.valid_to || "长期"}`;
}

// Reads the city's categories and departments once per drawing: the selects and the names.
async function loadNames() {
  const [categories, departments] = await Promise.all([loadKind("categories"), loadKind("departments")]);
  return {
    categories: categories.items.map((c) => [c.code, `${c.name}（${c.code}）`]),
    departments: departments.items.map((d) => [d.id, `${d.name}（${d.id}）`]),
    category: Object.fromEntries(categories.items.map((c) => [c.code, c.name])),
  };
}

// The options of a select, keeping the article's own value even if the configuration no longer
// has it (saving unchanged must not drop it silently; the server says whether it is still valid).
function choices(options, value, none) {
  const missing = value && !options.some(([v]) => v === value) ? [[value, `${value}（配置中已没有）`]] : [];
  return [["", none], ...options, ...missing];
}

function field(id, label, control, hint) {
  return [el("label", { for: id }, label), control, hint ? el("p", { class: "field-hint" }, hint) : null];
}

// The article form in a dialog: a new article (`article` null) or the next version of one.
// Resolves true once the server has stored it.
async function editArticle(article, names, reload) {
  const a = article || {};
  const f = {
    id: input("", { id: "kb-id", maxlength: "64", placeholder: "如 KB-SB-007", autocomplete: "off" }),
    title: input(a.title, { id: "kb-title", maxlength: "200" }),
    questions: el("textarea", { id: "kb-questions", rows: 4 }, (a.questions || []).join("\n")),
    answer: el("textarea", { id: "kb-answer", rows: 6 }, a.answer || ""),
    category: select(a.category || "", choices(names.categories, a.category, "（不关联分类）"), { id: "kb-category" }),
    department: select(a.department || "", choices(names.departments, a.department, "（不指定部门）"), { id: "kb-department" }),
    from: el("input", { type: "date", id: "kb-from", value: a.valid_from || "" }),
    to: el("input", { type: "date", id: "kb-to", value: a.valid_to || "" }),
    tags: input((a.tags || []).join("、"), { id: "kb-tags", placeholder: "如 社保、养老保险" }),
    note: input("", { id: "kb-note", maxlength: "200", placeholder: article ? "如：更新了办理渠道" : "如：新政策上线" }),
  };
  const out = el("div", {});
  function proposed() {
    const body = {
      title: f.title.value.trim(),
      questions: f.questions.value.split("\n").map((s) => s.trim()).filter(Boolean),
      answer: f.answer.value.trim(),
      tags: words(f.tags.value),
    };
    if (f.category.value) body.category = f.category.value;
    if (f.department.value) body.department = f.department.value;
    if (f.from.value) body.valid_from = f.from.value;
    if (f.to.value) body.valid_to = f.to.value;
    if (f.note.value.trim()) body.note = f.note.value.trim();
    return body;
  }
  const closeAndReload = () => { out.closest("dialog").close(); reload(); };
  function conflictBox(err) {
    const again = el("button", { class: "btn btn-secondary btn-small", type: "button", onclick: closeAndReload }, "重新加载");
    return el("div", { class: "problems", role: "alert" }, el("h3", {}, "该条目已被他人修改"),
      el("p", {}, err.message), again);
  }
  const saved = await formDialog({
    title: article ? `修改知识条目 · ${article.id}` : "新增知识条目",
    submit: article ? "保存为新版本" : "新增",
    wide: true,
    body: [
      out,
      article ? null : field("kb-id", "条目 id", f.id, "字母或数字开头，可含 - _ .，新增后不能修改"),
      ...field("kb-title", "标题", f.title),
      ...field("kb-questions", "来电问法（每行一种）", f.questions, "接线员按来电人的说法检索，问法越贴近口语越容易命中"),
      ...field("kb-answer", "答复口径", f.answer),
      ...field("kb-category", "事件分类", f.category),
      ...field("kb-department", "承办部门", f.department),
      el("div", { class: "kb-dates" }, el("div", {}, ...field("kb-from", "生效日期", f.from)),
        el("div", {}, ...field("kb-to", "失效日期", f.to))),
      ...field("kb-tags", "标签（逗号或顿号分隔）", f.tags),
      ...field("kb-note", "修改说明（记入版本历史，可不填）", f.note),
    ],
    onSubmit: async () => {
      out.replaceChildren();
      const body = proposed();
      try {
        const stored = article
          ? await request("PUT", `/api/admin/knowledge/${encodeURIComponent(article.id)}`, { ...body, version: article.version })
          : await request("POST", "/api/admin/knowledge", { id: f.id.value.trim(), ...body });
        toast(`已保存“${stored.title}”（第 ${stored.version} 版），接线员检索即时可见`, "success");
        return true;
      } catch (err) {
        const conflict = err instanceof ApiError && err.status === 409 && err.code === "version_conflict";
        const problems = err instanceof ApiError && err.status === 422 && err.details.problems;
        // The server's message already joins every problem: the list says them one by one.
        out.replaceChildren(conflict ? conflictBox(err)
          : problems ? problemsBox({ message: `条目有 ${problems.length} 处问题，未保存`, details: err.details })
            : errorBox(err, closeAndReload));
        out.scrollIntoView({ block: "nearest" });
        throw new Error(conflict ? "未保存：该条目已被他人修改" : "未保存，请按上面的提示修改");
      }
    },
  });
  return saved === true;
}

const ARTICLE_FIELDS = ["title", "questions", "answer", "category", "department", "valid_from", "valid_to", "tags"];

// The article's versions, newest first; an older one is restored in one click, as a new
// version (nothing is overwritten: the history keeps every step). True if one was restored.
async function showHistory(article) {
  const { items } = await request("GET", `/api/admin/knowledge/${encodeURIComponent(article.id)}/history`);
  let chosen = null;
  const restore = (v) => el("button", {
    class: "btn btn-secondary btn-small", type: "button", dataset: { restore: v.version },
    onclick: (event) => { chosen = v; event.target.closest("dialog").close(); },
  }, "恢复为此版本");
  await formDialog({
    title: `版本历史 · ${article.title}`,
    submit: "关闭",
    cancel: null,
    wide: true,
    body: el("div", { class: "kb-history" }, [...items].reverse().map((v) => el("article", { class: "version-item", dataset: { version: v.version } },
      el("header", {},
        el("b", {}, `第 ${v.version} 版`), el("span", { class: "muted" }, formatTime(v.at)), el("span", {}, v.by || ""),
        v.deleted ? el("span", { class: "tag tag-urgent" }, "已删除") : null,
        v.version === article.version ? el("span", { class: "tag" }, "当前") : null,
        v.version !== article.version && !v.deleted ? restore(v) : null),
      v.note ? el("div", {}, v.note) : null,
      v.deleted ? null : el("div", { class: "kb-answer muted" }, el("b", {}, v.title), "：", v.answer)))),
  });
  if (!chosen) return false;
  const body = Object.fromEntries(ARTICLE_FIELDS.map((k) => [k, chosen[k] === undefined ? null : chosen[k]]));
  await request("PUT", `/api/admin/knowledge/${encodeURIComponent(article.id)}`,
    { ...body, version: article.version, note: `恢复第 ${chosen.version} 版` });
  toast(`已将“${chosen.title}”恢复为第 ${chosen.version} 版（保存为新版本）`, "success");
  return true;
}

export async function renderKnowledge(holder, { reload }) {
  const [all, review, names] = await Promise.all([
    request("GET", "/api/knowledge"), request("GET", "/api/admin/knowledge/review"), loadNames()]);
  const uses = review.uses || {};
  const out = el("div", {});

  async function edit(article) {
    if (await editArticle(article, names, reload)) reload();
  }
  async function remove(article) {
    out.replaceChildren();
    const sure = await confirmDialog({
      title: "删除知识条目",
      message: `确定删除“${article.title}”（${article.id}）？删除后接线员将检索不到此条目，历史版本仍然保留。`,
      confirm: "删除", danger: true,
    });
    if (!sure) return;
    try {
      await request("DELETE", `/api/admin/knowledge/${encodeURIComponent(article.id)}?version=${article.version}`);
      toast(`已删除“${article.title}”`, "success");
      reload();
    } catch (err) { out.append(errorBox(err, reload)); }
  }
  async function history(article) {
    try {
      if (await showHistory(article)) reload();
    } catch (err) { out.replaceChildren(errorBox(err, reload)); }
  }
  const buttons = (article) => [
    el("button", { class: "btn btn-secondary btn-small", type: "button", onclick: () => edit(article) }, "修改"), " ",
    el("button", { class: "btn btn-secondary btn-small", type: "button", onclick: () => history(article) }, "版本历史"), " ",
    el("button", { class: "btn btn-secondary btn-small", type: "button", onclick: () => remove(article) }, "删除"),
  ];
  const categoryName = (a) => (a.category ? names.category[a.category] || a.category : "");

  const reviewCard = (a) => el("article", { class: "rule-card kb-review", dataset: { article: a.id } },
    el("header", {}, el("b", {}, a.title), el("span", { class: "muted" }, a.id),
      a.reasons.map((r) => el("span", { class: r === "never_used" ? "tag" : "tag tag-urgent" }, REASON_NAMES[r] || r))),
    el("div", { class: "muted" }, [categoryName(a), period(a), `使用 ${a.uses || 0} 次`].filter(Boolean).join(" · ")),
    (a.flags || []).length ? el("ul", { class: "kb-flags" }, a.flags.map((flag) => el("li", {},
      `“${flag.note}”`, el("span", { class: "muted" }, ` —— ${flag.by} · ${formatTime(flag.at)}`)))) : null,
    el("div", {}, buttons(a)));
  // Articles only never used yet are many in a new city: folded, the ones to act on stay in view.
  const urgent = review.items.filter((a) => a.reasons.some((r) => r !== "never_used"));
  const unused = review.items.filter((a) => !urgent.includes(a));

  const rows = el("tbody", {});
  const count = el("p", { class: "muted", role: "status" });
  function draw(items, query) {
    count.textContent = query ? `“${query}”找到 ${items.length} 条，按相关度排序（与接线员检索结果一致，不含不在有效期内的条目）`
      : `共 ${items.length} 条，最近修改的在前`;
    rows.replaceChildren(...items.map((a) => el("tr", { dataset: { article: a.id } },
      el("td", {}, el("b", {}, a.title), el("div", { class: "muted" }, a.id)),
      el("td", {}, categoryName(a)),
      el("td", {}, period(a)),
      el("td", {}, `${uses[a.id] || 0} 次`),
      el("td", {}, `第 ${a.version} 版`, a.updated_at ? el("div", { class: "muted" }, formatTime(a.updated_at)) : null),
      el("td", {}, buttons(a)))));
    if (!items.length) rows.append(el("tr", {}, el("td", { colspan: 6, class: "empty" }, query ? "没有找到相关条目。" : "知识库还没有条目。")));
  }
  const box = el("input", { type: "search", "aria-label": "搜索知识库", placeholder: "像接线员那样输入来电人的问题或关键词", size: 36, maxlength: "500" });
  async function search(event) {
    if (event) event.preventDefault();
    const q = box.value.trim();
    try {
      draw(q ? (await request("GET", `/api/knowledge?q=${encodeURIComponent(q)}&limit=50`)).items : all.items, q);
    } catch (err) { out.replaceChildren(errorBox(err, reload)); }
  }
  draw(all.items, "");  // as the server lists them: the newest change first

  add(holder,
    heading("知识库", null, el("span", { class: "tag" }, `${all.items.length} 条`),
      el("button", { class: "btn btn-small", type: "button", onclick: () => edit(null) }, "新增条目")),
    el("p", { class: "muted" }, "接线员接听时按来电内容检索这里的条目。每次修改都保存为新版本，可随时查看历史；删除后接线员检索不到，历史版本仍保留。"),
    out,
    el("h3", {}, `待复核（${review.items.length}）`),
    el("p", { class: "muted" }, "已过期、从未被接线员使用、或被接线员标记有误的条目，请核实后修改或删除。"),
    urgent.length ? el("div", { class: "kb-review-list" }, urgent.map(reviewCard))
      : el("p", { class: "empty" }, "没有已过期或被标记有误的条目。"),
    unused.length ? el("details", { class: "kb-unused" },
      el("summary", {}, `另有 ${unused.length} 条从未被接线员使用`), unused.map(reviewCard)) : null,
    el("h3", {}, "全部条目"),
    el("form", { class: "toolbar", role: "search", onsubmit: search }, box,
      el("button", { class: "btn btn-small", type: "submit" }, "搜索"),
      el("button", { class: "btn btn-secondary btn-small", type: "button", onclick: () => { box.value = ""; search(); } }, "清除")),
    count,
    el("table", { class: "grid-table kb-table" },
      el("thead", {}, el("tr", {}, ["标题", "事件分类", "有效期", "使用", "版本", "操作"].map((h) => el("th", {}, h)))),
      rows),
  );
}
