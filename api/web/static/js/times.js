// Time zones and instants in the browser with Intl only: wall time in an IANA zone <-> instant, and the
// readable forms of dues, reminders and durations. "Now" is the engine's clock (the dev clock may be ahead).

const ALL_DAY_HOUR = 9; // the engine resolves an all-day due at 09:00 in the list's zone

export function browserZone() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}

/** IANA zone names for a datalist (the server checks the name against tzdata anyway). */
export function zoneNames() {
  const names = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
  return Array.from(new Set(["UTC", ...names])).sort();
}

const partFormats = new Map();
const knownZones = new Map();

/** The zone if this browser's Intl knows it, else UTC (tzdata may be newer than the browser's ICU). */
export function usableZone(zone) {
  if (!knownZones.has(zone)) {
    let ok = true;
    try {
      new Intl.DateTimeFormat("en-US", { timeZone: zone });
    } catch {
      ok = false;
    }
    knownZones.set(zone, ok);
  }
  return knownZones.get(zone) ? zone : "UTC";
}

function parts(ms, wanted) {
  const zone = usableZone(wanted);
  let format = partFormats.get(zone);
  if (!format) {
    format = new Intl.DateTimeFormat("en-US", {
      timeZone: zone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    });
    partFormats.set(zone, format);
  }
  const out = {};
  for (const { type, value } of format.formatToParts(new Date(ms))) out[type] = Number(value);
  return out;
}

/** The zone's offset from UTC at an instant, in ms. */
function offsetAt(ms, zone) {
  const p = parts(ms, zone);
  const asUtc = Date.UTC(p.year, p.month - 1, p.day, p.hour % 24, p.minute, p.second);
  return asUtc - Math.floor(ms / 1000) * 1000;
}

/** "2026-11-23T10:00[:ss]" read as wall time in `zone` -> epoch ms (a time in a DST gap moves forward). */
export function wallToInstant(local, zone) {
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2}))?)?/.exec(local);
  if (!m) return NaN;
  const [, y, mo, d, hh = "0", mi = "0", ss = "0"] = m;
  const guess = Date.UTC(+y, +mo - 1, +d, +hh, +mi, +ss);
  const near = guess - offsetAt(guess, zone);
  const before = offsetAt(near - 6 * 3600_000, zone);
  const after = offsetAt(near + 6 * 3600_000, zone);
  // Ambiguous (fall back): the earlier instant; nonexistent (spring forward): the offset before the gap,
  // like the engine (RFC 5545, Python's fold=0).
  const candidates = [before, after].map((o) => guess - o).filter((t) => offsetAt(t, zone) === guess - t);
  return candidates.length ? Math.min(...candidates) : guess - before;
}

/** Epoch ms -> "YYYY-MM-DDTHH:MM" in `zone`, for datetime-local inputs. */
export function instantToWall(ms, zone) {
  const p = parts(ms, zone);
  const pad = (n) => String(n).padStart(2, "0");
  return `${p.year}-${pad(p.month)}-${pad(p.day)}T${pad(p.hour % 24)}:${pad(p.minute)}`;
}

export function formatInstant(ms, zone, { seconds = false, weekday = true, year = true } = {}) {
  return new Intl.DateTimeFormat(undefined, {
    timeZone: usableZone(zone),
    weekday: weekday ? "short" : undefined,
    year: year ? "numeric" : undefined,
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    second: seconds ? "2-digit" : undefined,
  }).format(new Date(ms));
}

export function formatDate(isoDate) {
  const [y, m, d] = isoDate.split("-").map(Number);
  return new Intl.DateTimeFormat(undefined, {
    timeZone: "UTC",
    weekday: "short",
    year: "numeric",
    month: "short",
    day: "numeric",
  }).format(new Date(Date.UTC(y, m - 1, d)));
}

/** The instant a due stands for, as the engine computes it (all-day: 09:00 in the list's zone). */
export function dueInstant(due, listZone) {
  if (!due) return NaN;
  if (due.date) return wallToInstant(`${due.date}T${String(ALL_DAY_HOUR).padStart(2, "0")}:00`, listZone);
  return wallToInstant(due.datetime, due.tz || listZone);
}

/** "Mon, Nov 23, 2026, 10:00 AM (Europe/Rome)", "Mon, Nov 23, 2026 (all day)". */
export function formatDue(due, listZone) {
  if (!due) return "";
  if (due.date) return `${formatDate(due.date)} (all day)`;
  const zone = due.tz || listZone;
  const text = formatInstant(wallToInstant(due.datetime, zone), zone);
  return `${text} (${due.tz ? zone : `floating, ${zone}`})`;
}

const relativeFormat = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
const UNITS = [
  ["year", 365 * 86400],
  ["month", 30 * 86400],
  ["week", 7 * 86400],
  ["day", 86400],
  ["hour", 3600],
  ["minute", 60],
  ["second", 1],
];

/** "in 2 hours", "3 days ago", relative to `now` (ms). */
export function relative(ms, now) {
  const seconds = (ms - now) / 1000;
  for (const [unit, size] of UNITS) {
    if (Math.abs(seconds) >= size || unit === "second") {
      return relativeFormat.format(Math.round(seconds / size), unit);
    }
  }
  return "";
}

/** "PT15M" -> 900 (seconds); NaN when not a W/D/H/M/S ISO 8601 duration. */
export function durationSeconds(text) {
  const m = /^P(?!$)(?:(\d+)W)?(?:(\d+)D)?(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$/.exec(text ?? "");
  if (!m) return NaN;
  const [w, d, hh, mm, ss] = m.slice(1).map((v) => Number(v ?? 0));
  return (((w * 7 + d) * 24 + hh) * 60 + mm) * 60 + ss;
}

/** 90061 -> "1 d 1 h 1 min 1 s"; 0 -> "0 s". */
export function formatSeconds(total) {
  let rest = Math.round(total);
  const out = [];
  for (const [unit, size] of [["d", 86400], ["h", 3600], ["min", 60], ["s", 1]]) {
    if (rest >= size) {
      out.push(`${Math.floor(rest / size)} ${unit}`);
      rest %= size;
    }
  }
  return out.join(" ") || "0 s";
}

/** A reminder in words: "15 min before due", "at Mon, Nov 23 ..." */
export function formatReminder(reminder, zone) {
  if (reminder.before_due) return `${formatSeconds(durationSeconds(reminder.before_due))} before due`;
  return `at ${formatInstant(Date.parse(reminder.at), zone)} (${zone})`;
}
