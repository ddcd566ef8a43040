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
