// The workshop's clock: a time typed by hand read in the workshop's zone, whatever the
// device's. Run by `make test` (node --test).
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const { wallTimeToIso } = require(path.join(__dirname, "../../mechanic_ui/static/mechanic/clock.js"));

test("a winter and a summer time in Jerusalem, UTC+2 and UTC+3", () => {
  assert.equal(wallTimeToIso("2026-01-05T10:00", "Asia/Jerusalem"), "2026-01-05T08:00:00.000Z");
  assert.equal(wallTimeToIso("2026-07-05T10:00", "Asia/Jerusalem"), "2026-07-05T07:00:00.000Z");
});

test("west of UTC the day may change", () => {
  assert.equal(wallTimeToIso("2026-01-05T22:30", "America/New_York"), "2026-01-06T03:30:00.000Z");
  assert.equal(wallTimeToIso("2026-01-05T00:15:30", "UTC"), "2026-01-05T00:15:30.000Z");
});

test("the hour repeated in autumn is its first passing, as Python's zoneinfo reads it", () => {
  // London's clocks go back from 02:00 BST to 01:00 GMT on 2026-10-25.
  assert.equal(wallTimeToIso("2026-10-25T01:30", "Europe/London"), "2026-10-25T00:30:00.000Z");
  assert.equal(wallTimeToIso("2026-10-25T02:30", "Europe/London"), "2026-10-25T02:30:00.000Z");
});

test("the hour lost in spring is read with the offset before the change", () => {
  // London's clocks go forward from 01:00 GMT to 02:00 BST on 2026-03-29.
  assert.equal(wallTimeToIso("2026-03-29T01:30", "Europe/London"), "2026-03-29T01:30:00.000Z");
  assert.equal(wallTimeToIso("2026-03-29T02:30", "Europe/London"), "2026-03-29T01:30:00.000Z");
  assert.equal(wallTimeToIso("2026-03-29T00:30", "Europe/London"), "2026-03-29T00:30:00.000Z");
});

test("not a wall-clock time: null", () => {
  for (const value of ["", "2026-01-05", "2026-02-30T10:00", "10:00", "2026-01-05T10:00Z", undefined]) {
    assert.equal(wallTimeToIso(value, "Asia/Jerusalem"), null, String(value));
  }
});
