import { DialPlan, callingCodeLength, isKnownCountry, type Normalised } from '../../../src/core/dial-plan';

const num = (e164: string, international: boolean): Normalised => ({ kind: 'number', e164, international });
const NZ = DialPlan.for('NZ');
const US = DialPlan.for('US');

describe('DialPlan NZ', () => {
  it.each([
    ['+252 61 234 5678', '+252612345678', true],
    ['00252612345678', '+252612345678', true],
    ['0061 2 9876 5432', '+61298765432', true],
    ['09 555 0111', '+6495550111', false],
    ['(09) 555-0111', '+6495550111', false],
    ['021 123 4567', '+64211234567', false],
    ['6495550111', '+6495550111', false],
    ['+64 9 555 0111', '+6495550111', false],
    ['0800 123 456', '+64800123456', false],
    ['95550111', '+6495550111', false],
  ])('%j', (dialled, e164, international) => {
    expect(NZ.normalise(dialled)).toEqual(num(e164, international));
  });

  it('prepends a global phone-context', () => {
    expect(NZ.normalise('95550111', '+64')).toEqual(num('+6495550111', false));
    expect(NZ.normalise('2125551234', '+1')).toEqual(num('+12125551234', true));
    expect(NZ.normalise('5551234', '+1-212')).toEqual(num('+12125551234', true));
  });

  it('ignores a domain phone-context (a local number in the home plan)', () => {
    expect(NZ.normalise('095550111', 'example.com')).toEqual(num('+6495550111', false));
  });

  it('rejects a malformed global phone-context', () => {
    expect(NZ.normalise('95550111', '+64x')).toEqual({ kind: 'invalid', why: 'phone-context is not a global number' });
  });

  it('reads service codes and names as on-net', () => {
    expect(NZ.normalise('*98')).toEqual({ kind: 'service' });
    expect(NZ.normalise('#31#0211234567')).toEqual({ kind: 'service' });
    expect(NZ.normalise('*')).toEqual({ kind: 'service' });
    expect(NZ.normalise('alice')).toEqual({ kind: 'service' });
    expect(NZ.normalise('voicemail-main')).toEqual({ kind: 'service' });
  });

  it.each([
    ['', /no digits/],
    ['+', /no digits/],
    ['  ', /no digits/],
    ['12a4', /letters/],
    ['alice99', /letters/],
    ['021*123', /'\*' or '#'/],
    ['+*98', /'\*' or '#'/],
    ['*98 1', /'\*' or '#'/],
    ['+2+52', /letters/],
    ['+0123456', /cannot start with 0/],
    ['+999123456', /unknown country calling code/],
    ['+64', /no national number/],
    ['+2526123456789012', /more than 15/],
    ['9'.repeat(40), /more than 15/],
    ['0'.repeat(5000), /more than 15/],
  ])('invalid: %j', (dialled, why) => {
    const n = NZ.normalise(dialled);
    expect(n.kind).toBe('invalid');
    if (n.kind === 'invalid') expect(n.why).toMatch(why);
  });
});

describe('DialPlan US (NANP)', () => {
  it.each([
    ['011252612345678', '+252612345678', true],
    ['011 44 20 7123 4567', '+442071234567', true],
    ['1 212 555 1234', '+12125551234', false],
    ['2125551234', '+12125551234', false],
    ['+1 212 555 1234', '+12125551234', false],
    ['+1 876 555 1234', '+18765551234', true],
    ['1 876 555 1234', '+18765551234', true],
    ['8765551234', '+18765551234', true],
    ['+1 809 555 1234', '+18095551234', true],
    ['+1 242 555 1234', '+12425551234', true],
  ])('%j', (dialled, e164, international) => {
    expect(US.normalise(dialled)).toEqual(num(e164, international));
  });
});

describe('DialPlan shared calling codes from the other side', () => {
  it('JM: only +1 876 / +1 658 are domestic', () => {
    const JM = DialPlan.for('JM');
    expect(JM.normalise('+1 876 555 1234')).toEqual(num('+18765551234', false));
    expect(JM.normalise('+1 658 555 1234')).toEqual(num('+16585551234', false));
    expect(JM.normalise('+1 212 555 1234')).toEqual(num('+12125551234', true));
    expect(JM.normalise('1 212 555 1234')).toEqual(num('+12125551234', true));
  });

  it('RU and KZ split +7 by leading digits', () => {
    expect(DialPlan.for('RU').normalise('+7 701 123 4567')).toEqual(num('+77011234567', true));
    expect(DialPlan.for('KZ').normalise('+7 701 123 4567')).toEqual(num('+77011234567', false));
    expect(DialPlan.for('RU').normalise('8 495 123 4567')).toEqual(num('+74951234567', false));
  });

  it('AU: 0011 is the IDD, 0 the national prefix', () => {
    const AU = DialPlan.for('AU');
    expect(AU.normalise('0011 252 61 234 5678')).toEqual(num('+252612345678', true));
    expect(AU.normalise('0011 64 9 555 0111')).toEqual(num('+6495550111', true));
    expect(AU.normalise('02 9876 5432')).toEqual(num('+61298765432', false));
  });

  it('GB: 00 IDD, 0 national prefix, carrier-style digits without +', () => {
    const GB = DialPlan.for('gb');
    expect(GB.country).toBe('GB');
    expect(GB.normalise('00 1 212 555 1234')).toEqual(num('+12125551234', true));
    expect(GB.normalise('020 7123 4567')).toEqual(num('+442071234567', false));
    expect(GB.normalise('442071234567')).toEqual(num('+442071234567', false));
  });

  it('applies a national-prefix transform rule (BS prepends its area code to 7-digit numbers)', () => {
    expect(DialPlan.for('BS').normalise('3561234')).toEqual(num('+12423561234', false));
  });
});

describe('DialPlan helpers', () => {
  it('knows which countries exist', () => {
    expect(isKnownCountry('NZ')).toBe(true);
    expect(isKnownCountry('XX')).toBe(false);
    expect(isKnownCountry('001')).toBe(false);
    expect(() => DialPlan.for('XX')).toThrow(/unknown country/);
  });

  it('finds the calling code length (prefix-free codes)', () => {
    expect(callingCodeLength('12125551234', 0)).toBe(1);
    expect(callingCodeLength('6495550111', 0)).toBe(2);
    expect(callingCodeLength('+252612345678', 1)).toBe(3);
    expect(callingCodeLength('999', 0)).toBe(0);
  });

  it('isDomestic agrees with normalise', () => {
    expect(US.isDomestic('+12125551234')).toBe(true);
    expect(US.isDomestic('+18765551234')).toBe(false);
    expect(NZ.isDomestic('+6495550111')).toBe(true);
    expect(NZ.isDomestic('+61298765432')).toBe(false);
  });

  it('caches one plan per country', () => {
    expect(DialPlan.for('nz')).toBe(NZ);
  });
});
