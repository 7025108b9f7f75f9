/*
 * The workshop's clock in the browser: a time typed in a form (a datetime-local value, a
 * wall-clock time without a zone) read in the workshop's time zone, not the device's. A
 * mechanic whose phone is set to another zone types the time the workshop's clocks showed.
 */
(function (root) {
  "use strict";

  const WALL_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$/;
  const HALF_DAY_MS = 12 * 3600 * 1000;

  // How far the zone's clock is ahead of UTC at `instant` (milliseconds since the epoch).
  function offsetMs(instant, timeZone) {
    const parts = new Intl.DateTimeFormat("en-US", {
      timeZone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    }).formatToParts(new Date(instant));
    const field = (type) => Number(parts.find((part) => part.type === type).value);
    const shown = Date.UTC(field("year"), field("month") - 1, field("day"), field("hour"), field("minute"), field("second"));
    return shown - (instant - (((instant % 1000) + 1000) % 1000));
  }

  // The instant (ISO 8601 in UTC) at which the zone's clocks show `value`; null when `value`
  // is not a wall-clock time. As Python's zoneinfo reads one: a time the clocks show twice
  // (the hour repeated in autumn) is its first passing, a time they skip (the hour lost in
  // spring) is read with the offset before the change.
  function wallTimeToIso(value, timeZone) {
    const match = WALL_TIME.exec(value || "");
    if (!match) return null;
    const [year, month, day, hour, minute, second] = match.slice(1).map((n) => Number(n || 0));
    const wall = Date.UTC(year, month - 1, day, hour, minute, second);
    if (Number.isNaN(wall) || new Date(wall).getUTCDate() !== day) return null;
    const before = offsetMs(wall - HALF_DAY_MS, timeZone);
    const after = offsetMs(wall + HALF_DAY_MS, timeZone);
    const shown = [wall - before, wall - after].filter((instant) => offsetMs(instant, timeZone) === wall - instant);
    return new Date(shown.length ? Math.min(...shown) : wall - before).toISOString();
  }

  const clock = { wallTimeToIso };
  if (typeof module !== "undefined" && module.exports) module.exports = clock;
  else root.ConclaveClock = clock;
})(typeof window !== "undefined" ? window : globalThis);
