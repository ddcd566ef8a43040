// 版本历史: every version of the city configuration (who, when, why, what changed per kind),
// and one-click rollback: a new version whose every kind is as the chosen version had it.
import { request, toast } from "./api.js";
import { el } from "./dom.js";
import { errorBox, heading, KIND_NAMES } from "./admin-common.js";
import { formatTime } from "./time.js";

function diffLine(kind, d) {
  const parts = [];
  const c = d.counts || {};
  if (c.added) parts.push(`新增 ${c.added}：${d.added.join("、")}`);
  if (c.removed) parts.push(`删除 ${c.removed}：${d.removed.join("、")}`);
  if (c.changed) parts.push(`修改 ${c.changed}：${d.changed.join("、")}`);
  if (d.reordered) parts.push("顺序调整");
  return el("li", { dataset: { kind } }, el("b", {}, KIND_NAMES[kind] || kind), "　", parts.join("；") || "无变化");
}

export async function renderHistory(holder, { reload }) {
  const { version, items } = await request("GET", "/api/admin/config/history?limit=100");
  const out = el("div", {});
  holder.append(
    heading("版本历史与回滚", version),
    el("p", { class: "muted" }, "回滚会以所选版本的全部配置发布一个新版本（历史不会被改写），所有服务进程数秒内生效；在办案件保持原派遣。"),
    out,
    el("div", {}, items.map((v) => {
      const confirmBox = el("span", {});
      async function rollback() {
        out.replaceChildren();
        try {
          const published = await request("POST", "/api/admin/config/rollback", { version: v.version });
          toast(`已回滚到第 ${v.version} 版（新版本 ${published.version}）`, "success");
          reload();
        } catch (err) { out.append(errorBox(err, reload)); }
      }
      const ask = () => confirmBox.replaceChildren(`确定回滚到第 ${v.version} 版？`,
        el("button", { class: "btn btn-danger btn-small", type: "button", onclick: rollback }, "确认回滚"),
        el("button", { class: "btn btn-secondary btn-small", type: "button", onclick: () => confirmBox.replaceChildren() }, "取消"));
      return el("article", { class: "version-item", dataset: { version: v.version } },
        el("header", {},
          el("b", {}, `第 ${v.version} 版`), el("span", { class: "muted" }, formatTime(v.at)), el("span", {}, v.by),
          v.rollback_of ? el("span", { class: "tag" }, `回滚自第 ${v.rollback_of} 版`) : null,
          v.version === version ? el("span", { class: "tag" }, "当前") :
            el("button", { class: "btn btn-secondary btn-small", type: "button", onclick: ask }, "回滚到此版本"),
          confirmBox),
        el("div", {}, v.note),
        el("ul", { class: "ids" }, Object.entries(v.diff || {}).map(([kind, d]) => diffLine(kind, d))));
    })),
  );
}
