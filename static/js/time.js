// Times as the city reads them. Every page shows instants in the city's time zone (city.yaml
// `timezone`, Asia/Shanghai unless the server says otherwise in me.city.timezone), whatever
// zone the browser is in: all formatting goes through Intl.DateTimeFormat with timeZone, never
// through Date's local getters (getHours(), toLocaleString(), ...).
//
//   setTimeZone(name)        the city's zone (mountHeader calls it with me.city.timezone)
//   cityParts(when)          {year, month, day, hour, minute, second, weekday (0 = Sunday)}
//   formatTime(iso)          "3月5日 09:07" ("—" without a time)
//   clockTime(iso)           "09:07"
//   clockText(when)          "2024年3月5日 星期二 09:07:30" (the command centre's header clock)
//   cityDate(when)           "2024-03-05": the city's calendar day
//   cityMidnight(daysBack)   a Date at the city's midnight, `daysBack` days before today
//
// A case's running stage clock comes from the server (`case.timer`, dispatch/workflow/stageclock.py):
// the remaining time is counted there on the limit's own clock (working hours for a wh/wd limit),
// so the pages never do calendar arithmetic and always agree with the sweep's 临期/超期.
//   timerRemaining(timer, now)  seconds left (negative once overdue), moved on since `as_of`
//   timerLevel(timer, now)      "ok" | "warning" | "overdue" | "paused"
//   timerText(timer, now)       "剩余 1个工作小时05分（周一 10:30）" / "超期 25个工作分钟" / "暂停计时 · 剩余 …"

export const DEFAULT_TIME_ZONE = "Asia/Shanghai";
const WEEKDAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const WEEKDAY_NAMES = "日一二三四五六";

let zone = DEFAULT_TIME_ZONE;
let partsFormat = null;

export function setTimeZone(name) {
  if (!name || name === zone) return;
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: name });
  } catch {
    return; // an unknown zone: keep the default rather than the browser's
  }
  zone = name;
  partsFormat = null;
}

export function timeZone() { return zone; }

const pad = (n) => String(n).padStart(2, "0");

export function cityParts(when = new Date()) {
  const d = when instanceof Date ? when : new Date(when);
  partsFormat ||= new Intl.DateTimeFormat("en-US", {
    timeZone: zone, hourCycle: "h23", weekday: "short",
    year: "numeric", month: "numeric", day: "numeric", hour: "numeric", minute: "numeric", second: "numeric",
  });
  const p = {};
  for (const part of partsFormat.formatToParts(d)) p[part.type] = part.value;
  return {
    year: +p.year, month: +p.month, day: +p.day, hour: +p.hour % 24, minute: +p.minute, second: +p.second,
    weekday: WEEKDAYS.indexOf(p.weekday),
  };
}

export function formatTime(iso) {
  if (!iso) return "—";
  const t = cityParts(iso);
  return `${t.month}月${t.day}日 ${pad(t.hour)}:${pad(t.minute)}`;
}

export function clockTime(iso) {
  if (!iso) return "";
  const t = cityParts(iso);
  return `${pad(t.hour)}:${pad(t.minute)}`;
}

export function clockText(when = new Date()) {
  const t = cityParts(when);
  return `${t.year}年${t.month}月${t.day}日 星期${WEEKDAY_NAMES[t.weekday]} ${pad(t.hour)}:${pad(t.minute)}:${pad(t.second)}`;
}

export function cityDate(when = new Date()) {
  const t = cityParts(when);
  return `${t.year}-${pad(t.month)}-${pad(t.day)}`;
}

// How far the city's wall clock is ahead of UTC at `ms` (milliseconds).
function offsetAt(ms) {
  const t = cityParts(new Date(ms));
  return Date.UTC(t.year, t.month - 1, t.day, t.hour, t.minute, t.second) - Math.floor(ms / 1000) * 1000;
}

export function cityMidnight(daysBack = 0, now = new Date()) {
  const t = cityParts(now);
  const wall = Date.UTC(t.year, t.month - 1, t.day - daysBack);
  let ms = wall - offsetAt(wall);
  ms = wall - offsetAt(ms); // once more: the offset at the answer itself (summer time)
  return new Date(ms);
}

// -- the server's stage clock (case.timer) ----------------------------------------------------

const ms = (iso) => new Date(iso).getTime();

// The server counted `remaining_seconds` at `as_of`; the clock has run since then only up to
// `runs_until` (the end of the working period it was in; null: a natural clock, always running).
export function timerRemaining(timer, now = Date.now()) {
  if (!timer) return null;
  const asOf = ms(timer.as_of);
  const end = timer.runs_until ? ms(timer.runs_until) : Infinity;
  const ran = Math.max(0, Math.min(now, end) - asOf);
  return timer.remaining_seconds - Math.floor(ran / 1000);
}

export function timerLevel(timer, now = Date.now()) {
  if (!timer) return "none";
  if (timer.paused) return "paused";
  if (timer.level === "overdue" || now >= ms(timer.due_at)) return "overdue";
  if (timer.level === "warning" || now >= ms(timer.warn_at)) return "warning";
  return "ok";
}

// 1个工作小时05分 / 25个工作分钟 on a working clock; 2天03小时 / 3小时05分 / 12分钟 on a natural one.
export function timerSpan(seconds, unit) {
  const s = Math.abs(seconds);
  const d = Math.floor(s / 86400), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  if (unit === "working") return h ? `${h}个工作小时${m ? pad(m) + "分" : ""}` : `${m}个工作分钟`;
  if (d) return `${d}天${pad(h % 24)}小时`;
  return h ? `${h}小时${pad(m)}分` : `${m}分钟`;
}

// "周一 10:30" within the coming week, else "3月12日 10:30".
function dueText(iso, now) {
  const t = cityParts(iso);
  return ms(iso) - now < 6 * 86400000 && ms(iso) > now
    ? `周${WEEKDAY_NAMES[t.weekday]} ${pad(t.hour)}:${pad(t.minute)}` : formatTime(iso);
}

export function timerText(timer, now = Date.now()) {
  if (!timer) return "";
  const left = timerRemaining(timer, now);
  const span = timerSpan(left, timer.unit);
  if (timer.paused) return `暂停计时 · 剩余 ${span}`;
  if (left >= 0 && now < ms(timer.due_at)) return `剩余 ${span}（${dueText(timer.due_at, now)}）`;
  return Math.abs(left) < 60 ? "超期" : `超期 ${span}`;  // under a minute: just 超期
}
