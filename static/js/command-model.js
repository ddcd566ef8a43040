// The command centre's view of a case: one flat summary built from a live GeoJSON feature or a
// case document, the filters that apply to the map and the lists, and how a change reads in
// the event ticker.
import { STATUS_NAMES } from "./api.js";
import { cityDate, cityMidnight, clockTime } from "./time.js";

export const OPEN = ["reported", "filed", "dispatched", "accepted", "handled", "checked", "suspended"];

// Map colours: statuses grouped the way a duty officer reads the board.
export const STATUS_GROUPS = [
  { key: "intake", name: "待立案/待派遣", statuses: ["reported", "filed"], color: "#b37feb" },
  { key: "dispatched", name: "待签收", statuses: ["dispatched"], color: "#4096ff" },
  { key: "handling", name: "处置中", statuses: ["accepted", "suspended"], color: "#13c2c2" },
  { key: "checking", name: "待核查/待结案", statuses: ["handled", "checked"], color: "#73d13d" },
  { key: "closed", name: "已结案", statuses: ["closed"], color: "#8c9bb0" },
];
export const GROUP_OF_STATUS = Object.fromEntries(STATUS_GROUPS.flatMap((g) => g.statuses.map((s) => [s, g])));

// Options of the status filter: [value, label].
export const STATUS_FILTERS = [
  ["", "全部案件"], ["open", "在办案件"], ["reported", "待立案"], ["filed", "待派遣"], ["dispatched", "待签收"],
  ["accepted", "处置中"], ["handled", "待核查"], ["checked", "待结案"], ["closed", "已结案"],
  ["overdue", "超期"], ["warning", "临期"], ["supervised", "督办中"],
];

export const WINDOWS = { today: "今日", "7d": "近7天", "30d": "近30天" };

// The city's calendar day of a Date ("2024-03-05").
export const isoDate = cityDate;
export { clockTime };

// First day of the window (the city's calendar day), as a Date at the city's midnight.
export function windowStart(windowKey, now = new Date()) {
  const days = { today: 0, "7d": 6, "30d": 29 }[windowKey] ?? 0;
  return cityMidnight(days, now);
}

export function ago(iso, now = Date.now()) {
  if (!iso) return "";
  const minutes = Math.max(0, Math.round((now - new Date(iso).getTime()) / 60000));
  if (minutes < 1) return "刚刚";
  if (minutes < 60) return `${minutes}分钟前`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return `${hours}小时前`;
  return `${Math.floor(hours / 24)}天前`;
}

// A live feature (properties flat, names of the places) or a case document → one summary.
export function fromFeature(feature) {
  const p = feature.properties || {};
  const coords = feature.geometry && feature.geometry.coordinates;
  return {
    id: p.id || feature.id, number: p.number, source: p.source, channel: p.channel, type: p.type,
    category: p.category || {}, status: p.status, priority: p.priority, address: p.address,
    assignment: p.assignment || {}, deadlines: p.deadlines || {}, flags: p.flags || {}, timer: p.timer || null,
    district: p.district, street: p.street, community: p.community, grid: p.grid,
    summary: p.summary || "", created_at: p.created_at, updated_at: p.updated_at, version: p.version,
    coords: coords ? [coords[0], coords[1]] : null,
  };
}

export function fromCase(c) {
  const j = c.jurisdiction || {};
  const name = (level) => (j[level] ? j[level].name : null);
  return {
    id: c.id, number: c.number, source: c.source, channel: c.channel, type: c.type,
    category: c.category || {}, status: c.status, priority: c.priority, address: c.address,
    assignment: c.assignment || {}, deadlines: c.deadlines || {}, flags: c.flags || {}, timer: c.timer || null,
    district: name("district"), street: name("street"), community: name("community"), grid: name("grid"),
    summary: (c.description || "").slice(0, 80), created_at: c.created_at, updated_at: c.updated_at,
    version: c.version, coords: c.location ? c.location.coordinates.slice(0, 2) : null,
    actions: c.actions,  // what this user may do now (the list API and action answers carry it)
  };
}

export function place(s) {
  return [s.district, s.street].filter(Boolean).join("") || s.address || "位置未知";
}

export function departmentName(s) {
  return ((s.assignment || {}).department || {}).name || null;
}

// The filters of the toolbar as one predicate. Open cases are live work and always count,
// however old; the time window picks which finished (结案) cases are shown with them.
export function matches(s, filters) {
  if (s.status === "void" || s.status === "merged") return false;
  if (!OPEN.includes(s.status) && filters.since) {
    const finished = s.updated_at || s.created_at;
    if (finished && new Date(finished) < filters.since) return false;
  }
  if (filters.category && (s.category || {}).code !== filters.category) return false;
  if (filters.department && ((s.assignment || {}).department || {}).id !== filters.department) return false;
  const f = s.flags || {};
  switch (filters.status) {
    case "": return true;
    case "open": return OPEN.includes(s.status);
    case "overdue": return OPEN.includes(s.status) && !!f.overdue;
    case "warning": return OPEN.includes(s.status) && !!f.warning && !f.overdue;
    case "supervised": return OPEN.includes(s.status) && !!f.supervised;
    default: return s.status === filters.status;
  }
}

export function level(s) {
  const f = s.flags || {};
  if (!OPEN.includes(s.status)) return "none";
  if (f.overdue) return "overdue";
  if (f.warning) return "warning";
  return "ok";
}

// What happened, for the ticker: compares the summary with the one seen before.
// → {text, kind: "new"|"move"|"warning"|"overdue"|"done"|"info"} or null when nothing to say.
export function describeChange(type, now, before) {
  const dept = departmentName(now);
  const to = dept ? ` → ${dept}` : "";
  if (type === "case.created") {
    const intake = now.source === "hotline" ? "热线登记" : "网格上报";
    if (now.status === "dispatched") return { text: `${intake}，自动派遣${to}`, kind: "new" };
    if (now.status === "closed") return { text: `${intake}，即时办结`, kind: "done" };
    return { text: now.flags.needs_location ? `${intake}，待补充定位` : intake, kind: "new" };
  }
  // A case this screen had not seen before (the page holds work lists, not the whole scope):
  // what it stands at now.
  if (!before) return standing(now);
  const f = now.flags || {}, g = before.flags || {};
  if (now.status !== before.status) {
    const from = before.status;
    switch (now.status) {
      case "filed": return from === "reported" ? { text: "已立案", kind: "move" } : { text: "部门退单，待重新派遣", kind: "warning" };
      case "dispatched": return { text: (from === "dispatched" ? "已改派" : "已派遣") + to, kind: "move" };
      case "accepted":
        if (from === "handled") return { text: "核查未通过，返工" + to, kind: "warning" };
        if (from === "suspended") return { text: "恢复办理", kind: "move" };
        if (from === "closed") return { text: "重新办理" + to, kind: "warning" };
        return { text: `${dept || "责任部门"}已签收`, kind: "move" };
      case "handled": return { text: `${dept || "责任部门"}已反馈处置结果`, kind: "move" };
      case "checked": return { text: now.source === "hotline" ? "回访通过，待结案" : "核查通过，待结案", kind: "move" };
      case "closed": return { text: from === "reported" ? "即时办结" : "已结案", kind: "done" };
      case "void": return { text: "已作废", kind: "info" };
      case "merged": return { text: "已并案", kind: "info" };
      case "suspended": return { text: "已挂账", kind: "warning" };
      default: return { text: STATUS_NAMES[now.status] || now.status, kind: "move" };
    }
  }
  if (f.overdue && !g.overdue) return { text: "已超期", kind: "overdue" };
  if (f.warning && !g.warning) return { text: "临期预警", kind: "warning" };
  if (f.supervised && !g.supervised) return { text: "督办", kind: "overdue" };
  if (f.escalated_to && f.escalated_to !== g.escalated_to) return { text: "已上报上级", kind: "overdue" };
  if (f.extension_pending && !g.extension_pending) return { text: "申请延期", kind: "warning" };
  if (!f.needs_location && g.needs_location) return { text: "已补充定位" + to, kind: "move" };
  return null;
}

const STANDING = { reported: "待立案", filed: "已立案，待派遣", dispatched: "已派遣", accepted: "处置中", handled: "已反馈，待核查",
                   checked: "核查通过，待结案", closed: "已结案", suspended: "已挂账" };

// Where a case stands, as a ticker line ({text, kind}; null for void and merged cases).
export function standing(s) {
  const text = STANDING[s.status];
  if (!text) return null;
  const dept = departmentName(s);
  const kind = (s.flags || {}).overdue ? "overdue" : s.status === "closed" ? "done" : "move";
  return { text: ((s.flags || {}).overdue ? "超期 · " : "") + text + (dept && s.status !== "closed" ? ` → ${dept}` : ""), kind };
}
