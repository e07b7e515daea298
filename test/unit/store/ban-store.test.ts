import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { MemoryBanStore, SqliteBanStore, type Ban, type BanStore } from '../../../src/store/ban-store';
import { openDatabase } from '../../../src/store/sqlite';

const ban = (address: string, appliedAt: number, seconds = 300): Ban => ({
  address,
  reason: 'flood',
  detail: '50 REGISTER in 2 s (limit 40)',
  evidence: { count: 50, userAgent: 'friendly-scanner' },
  appliedAt,
  expiresAt: appliedAt + seconds * 1000,
  offence: 1,
});

function contract(name: string, make: () => BanStore) {
  describe(`${name}: the BanStore contract`, () => {
    it('lists bans in force newest first, with their evidence, and not expired ones', () => {
      const s = make();
      s.add(ban('192.0.2.1', 1000));
      s.add(ban('192.0.2.2', 2000));
      s.add(ban('192.0.2.3', 0, 1));
      const active = s.active(3000);
      expect(active.map((b) => b.address)).toEqual(['192.0.2.2', '192.0.2.1']);
      expect(active[0].evidence).toEqual({ count: 50, userAgent: 'friendly-scanner' });
    });

    it('lifts a ban, records who lifted it, and keeps it in the history that escalates the next one', () => {
      const s = make();
      s.add(ban('192.0.2.1', 1000));
      expect(s.lift('192.0.2.1', 'alice', 1500)).toBe(1);
      expect(s.lift('192.0.2.1', 'alice', 1600)).toBe(0);
      expect(s.active(2000)).toEqual([]);
      expect(s.countSince('192.0.2.1', 0)).toBe(1);
      expect(s.countSince('192.0.2.1', 1001)).toBe(0);
    });
  });
}

contract('MemoryBanStore', () => new MemoryBanStore());
contract('SqliteBanStore', () => new SqliteBanStore(openDatabase(':memory:')));

describe('SqliteBanStore across processes (two connections to one file)', () => {
  it('survives a reopen and tells the guard when the CLI lifted a ban', () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'bans-')), 'tollguard.db');
    const guardDb = openDatabase(file);
    const guard = new SqliteBanStore(guardDb);
    guard.add(ban('192.0.2.1', Date.now()));
    expect(guard.changedElsewhere()).toBe(false); // its own write

    const cliDb = openDatabase(file);
    const cli = new SqliteBanStore(cliDb);
    expect(cli.active(Date.now()).map((b) => b.address)).toEqual(['192.0.2.1']);
    expect(cli.lift('192.0.2.1', 'cli', Date.now())).toBe(1);
    cliDb.close();

    expect(guard.changedElsewhere()).toBe(true);
    expect(guard.changedElsewhere()).toBe(false);
    expect(guard.active(Date.now())).toEqual([]);
    guardDb.close();
  });
});
