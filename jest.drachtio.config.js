/**
 * The drachtio front end against a real drachtio-server: by hand only (drachtio-server is not on
 * npm or Debian), `TOLLGUARD_DRACHTIO_SERVER=/path/to/drachtio npm run test:drachtio`.
 */
module.exports = {
  preset: 'ts-jest',
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  testMatch: ['<rootDir>/test/drachtio-live/**/*.test.ts'],
};
