/**
 * Local time of day and weekday in an account's time zone, cheaply: Intl formatting costs
 * microseconds, so each zone's UTC offset is looked up once per quarter hour and reused (every
 * real offset change happens on a quarter-hour boundary).
 */

/** Each country's main (most populous) zone; accounts elsewhere set `timezone` in monitor.yaml. */
const COUNTRY_ZONES: Record<string, string> = {
  NZ: 'Pacific/Auckland', AU: 'Australia/Sydney', US: 'America/New_York', CA: 'America/Toronto', GB: 'Europe/London',
  IE: 'Europe/Dublin', DE: 'Europe/Berlin', FR: 'Europe/Paris', NL: 'Europe/Amsterdam', BE: 'Europe/Brussels',
  ES: 'Europe/Madrid', IT: 'Europe/Rome', CH: 'Europe/Zurich', AT: 'Europe/Vienna', SE: 'Europe/Stockholm',
  NO: 'Europe/Oslo', DK: 'Europe/Copenhagen', FI: 'Europe/Helsinki', PL: 'Europe/Warsaw', PT: 'Europe/Lisbon',
  GR: 'Europe/Athens', ZA: 'Africa/Johannesburg', IN: 'Asia/Kolkata', SG: 'Asia/Singapore', HK: 'Asia/Hong_Kong',
  JP: 'Asia/Tokyo', KR: 'Asia/Seoul', CN: 'Asia/Shanghai', PH: 'Asia/Manila', MY: 'Asia/Kuala_Lumpur',
  ID: 'Asia/Jakarta', TH: 'Asia/Bangkok', AE: 'Asia/Dubai', IL: 'Asia/Jerusalem', BR: 'America/Sao_Paulo',
  MX: 'America/Mexico_City', AR: 'America/Argentina/Buenos_Aires', CL: 'America/Santiago', FJ: 'Pacific/Fiji',
  WS: 'Pacific/Apia', TO: 'Pacific/Tongatapu', CK: 'Pacific/Rarotonga',
};

export function timezoneOfCountry(country: string): string | undefined {
  return COUNTRY_ZONES[country.toUpperCase()];
}

const QUARTER_HOUR = 900_000;
const formatters = new Map<string, Intl.DateTimeFormat>();
const offsets = new Map<string, { bucket: number; offsetMs: number }>();

function offsetOf(tz: string, at: number): number {
  const bucket = Math.floor(at / QUARTER_HOUR);
  const hit = offsets.get(tz);
  if (hit !== undefined && hit.bucket === bucket) return hit.offsetMs;
  let f = formatters.get(tz);
  if (f === undefined) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: tz, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric' });
    formatters.set(tz, f);
  }
  const p: Record<string, number> = {};
  for (const part of f.formatToParts(bucket * QUARTER_HOUR)) if (part.type !== 'literal') p[part.type] = Number(part.value);
  const asUtc = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute);
  const offsetMs = asUtc - bucket * QUARTER_HOUR;
  offsets.set(tz, { bucket, offsetMs });
  return offsetMs;
}

export interface LocalTime {
  /** 0 = Sunday ... 6 = Saturday. */
  weekday: number;
  /** Minutes since local midnight. */
  minuteOfDay: number;
  hour: number;
}

export function localTime(tz: string, at: number): LocalTime {
  const local = new Date(at + offsetOf(tz, at));
  const hour = local.getUTCHours();
  return { weekday: local.getUTCDay(), minuteOfDay: hour * 60 + local.getUTCMinutes(), hour };
}

/** Night (from..to, may wrap midnight) or, when weekends count, Saturday and Sunday. */
export function isOffHours(t: LocalTime, nightFrom: number, nightTo: number, weekends: boolean): boolean {
  if (weekends && (t.weekday === 0 || t.weekday === 6)) return true;
  const m = t.minuteOfDay;
  return nightFrom <= nightTo ? m >= nightFrom && m < nightTo : m >= nightFrom || m < nightTo;
}
