// The case detail sheet of the grid worker page: the one case renderer (case-detail.js) in a
// full-screen sheet, without the small map (the page has its own) and with "我" for the
// worker's own entries.
import { api } from "./api.js";
import { el } from "./dom.js";
import { renderCaseDetail } from "./case-detail.js";
import { loadingState, openSheet } from "./report-common.js";

export async function openCaseDetail(caseId, me) {
  const body = el("div", {}, loadingState());
  openSheet("案件详情", body);
  try {
    const c = await api.get(`/api/cases/${encodeURIComponent(caseId)}`);
    renderCaseDetail(body, c, { map: false, me });
  } catch (err) {
    body.replaceChildren(el("p", { class: "error-text" }, err.message));
  }
}
