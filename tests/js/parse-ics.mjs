#!/usr/bin/env node
// Test harness: parse one iCalendar object (RFC 5545 / iTIP RFC 5546) with
// ical.js -- Mozilla's parser, the one Thunderbird's calendar is built on --
// and print what it understood as JSON on stdout.
//
//   node tests/js/parse-ics.mjs < invite.ics
//
// Used from Python through tests/icaljs.py (parse_with_icaljs).
//
// Output shape (one line of JSON):
//   {
//     "method": "REQUEST" | "CANCEL" | ... | null,
//     "prodid": string | null,
//     "events": [{
//       "uid", "status", "summary", "description", "location", "url": string | null,
//       "sequence": int | null            (null when SEQUENCE is absent),
//       "dtstamp_utc", "start_utc", "end_utc":
//           "YYYY-MM-DDTHH:MM:SSZ" | null  (converted to UTC by ical.js; null when
//                                           the value is absent, a DATE, or
//                                           floating / has an unresolvable TZID),
//       "start_tzid", "end_tzid": the TZID parameter as written, or null,
//       "start_zone", "end_zone": the zone ical.js actually used:
//           "UTC", a TZID, or "floating" (no zone, or TZID ical.js could not resolve),
//       "start_local", "end_local": the wall-clock value ical.js holds, before
//           conversion ("YYYY-MM-DDTHH:MM:SS", or "YYYY-MM-DD" for DATE values),
//       "organizer": {"value": "mailto:...", "cn": string | null} | null,
//       "attendees": [{"value", "cn", "role", "partstat", "rsvp"}]   (params: raw
//           strings as ical.js decoded them, null when absent)
//     }],
//     "timezones": [TZID of every VTIMEZONE in the calendar]
//   }
//
// Exits 1 with a message on stderr when the input cannot be parsed.

import ICAL from "ical.js";

function fail(message) {
  process.stderr.write(`parse-ics: ${message}\n`);
  process.exit(1);
}

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) {
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

function pad(n, width = 2) {
  return String(n).padStart(width, "0");
}

function formatLocal(time) {
  const date = `${pad(time.year, 4)}-${pad(time.month)}-${pad(time.day)}`;
  if (time.isDate) {
    return date;
  }
  return `${date}T${pad(time.hour)}:${pad(time.minute)}:${pad(time.second)}`;
}

function isFloating(time) {
  return !time.zone || time.zone === ICAL.Timezone.localTimezone ||
    time.zone.tzid === "floating";
}

function toUtcString(time) {
  if (!time || time.isDate || isFloating(time)) {
    return null;
  }
  const utc = time.convertToZone(ICAL.Timezone.utcTimezone);
  return `${formatLocal(utc)}Z`;
}

function zoneName(time) {
  if (!time) {
    return null;
  }
  if (isFloating(time)) {
    return "floating";
  }
  if (time.zone === ICAL.Timezone.utcTimezone) {
    return "UTC";
  }
  return time.zone.tzid;
}

function stringOrNull(value) {
  if (value === null || value === undefined) {
    return null;
  }
  return String(value);
}

function param(prop, name) {
  const value = prop.getParameter(name);
  if (value === null || value === undefined) {
    return null;
  }
  // Multi-valued parameters come back as arrays; join them like the wire form.
  return Array.isArray(value) ? value.join(",") : String(value);
}

function describeTime(component, propName, time) {
  const prop = component.getFirstProperty(propName);
  return {
    tzid: prop ? param(prop, "tzid") : null,
    zone: zoneName(time),
    local: time ? formatLocal(time) : null,
    utc: toUtcString(time),
  };
}

function describeEvent(vevent) {
  const event = new ICAL.Event(vevent);

  const start = event.startDate;
  // ical.js derives endDate from DTEND, or DTSTART + DURATION.
  const end = start ? event.endDate : null;
  const startInfo = describeTime(vevent, "dtstart", start);
  // When DTEND is absent (DURATION used), the end carries DTSTART's zone.
  const endInfo = describeTime(
    vevent, vevent.hasProperty("dtend") ? "dtend" : "dtstart", end
  );

  const dtstamp = vevent.getFirstPropertyValue("dtstamp");

  const organizerProp = vevent.getFirstProperty("organizer");
  const organizer = organizerProp
    ? {
        value: stringOrNull(organizerProp.getFirstValue()),
        cn: param(organizerProp, "cn"),
      }
    : null;

  const attendees = vevent.getAllProperties("attendee").map((prop) => ({
    value: stringOrNull(prop.getFirstValue()),
    cn: param(prop, "cn"),
    role: param(prop, "role"),
    partstat: param(prop, "partstat"),
    rsvp: param(prop, "rsvp"),
  }));

  const sequence = event.sequence;

  return {
    uid: stringOrNull(event.uid),
    sequence: sequence === null || sequence === undefined ? null : Number(sequence),
    status: stringOrNull(vevent.getFirstPropertyValue("status")),
    summary: stringOrNull(event.summary),
    description: stringOrNull(event.description),
    location: stringOrNull(event.location),
    url: stringOrNull(vevent.getFirstPropertyValue("url")),
    dtstamp_utc: toUtcString(dtstamp),
    start_utc: startInfo.utc,
    end_utc: endInfo.utc,
    start_tzid: startInfo.tzid,
    end_tzid: endInfo.tzid,
    start_zone: startInfo.zone,
    end_zone: endInfo.zone,
    start_local: startInfo.local,
    end_local: endInfo.local,
    organizer,
    attendees,
  };
}

function main(text) {
  if (!text.trim()) {
    fail("no input on stdin");
  }

  let jcal;
  try {
    jcal = ICAL.parse(text);
  } catch (err) {
    fail(`ICAL.parse failed: ${err && err.message ? err.message : err}`);
  }

  // ICAL.parse returns one jCal component, or an array of them when the
  // input holds several top-level components.
  const roots = typeof jcal[0] === "string" ? [jcal] : jcal;
  if (roots.length !== 1) {
    fail(`expected exactly one top-level component, got ${roots.length}`);
  }
  const calendar = new ICAL.Component(roots[0]);
  if (calendar.name !== "vcalendar") {
    fail(`top-level component is ${calendar.name.toUpperCase()}, not VCALENDAR`);
  }

  // Register the calendar's own VTIMEZONEs, as the brief asks. (ical.js >= 2
  // also resolves a TZID against VTIMEZONEs in the same component tree first,
  // which is what Thunderbird relies on; registering keeps both paths equal.)
  ICAL.TimezoneService.reset();
  const timezones = [];
  for (const vtimezone of calendar.getAllSubcomponents("vtimezone")) {
    const tzid = vtimezone.getFirstPropertyValue("tzid");
    if (!tzid) {
      fail("VTIMEZONE without TZID");
    }
    ICAL.TimezoneService.register(new ICAL.Timezone(vtimezone));
    timezones.push(String(tzid));
  }

  const events = calendar.getAllSubcomponents("vevent").map(describeEvent);

  return {
    method: stringOrNull(calendar.getFirstPropertyValue("method")),
    prodid: stringOrNull(calendar.getFirstPropertyValue("prodid")),
    events,
    timezones,
  };
}

let result;
try {
  result = main(await readStdin());
} catch (err) {
  fail(err && err.stack ? err.stack : String(err));
}
process.stdout.write(JSON.stringify(result) + "\n");
