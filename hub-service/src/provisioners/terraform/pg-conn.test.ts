/** How the service's Postgres URL becomes the connection string terraform's pg backend gets. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PgConnStringError, terraformPgConnString } from './pg-conn.js';

const sslmode = (url: string) =>
  new URL(terraformPgConnString(url).connString).searchParams.get('sslmode');

describe('terraformPgConnString', () => {
  it('no sslmode: TLS off for terraform too (lib/pq would require it), with a note for a remote host', () => {
    const r = terraformPgConnString('postgres://ngsci:pw-FAKE-123@db.example.org:5432/ngsci');
    assert.equal(
      r.connString,
      'postgres://ngsci:pw-FAKE-123@db.example.org:5432/ngsci?sslmode=disable',
    );
    assert.match(r.note ?? '', /db\.example\.org without TLS/);
    assert.ok(!r.note?.includes('pw-FAKE-123'), 'the note never holds the password');
  });

  it('no sslmode on a loopback host or a socket: no note', () => {
    for (const url of [
      'postgres://u:p@127.0.0.1:5432/test',
      'postgresql://u@localhost/test',
      'postgres://u@[::1]/test',
      'postgres:///test?host=/var/run/postgresql',
    ]) {
      const r = terraformPgConnString(url);
      assert.equal(new URL(r.connString).searchParams.get('sslmode'), 'disable', url);
      assert.equal(r.note, undefined, url);
    }
  });

  it('modes lib/pq knows are kept; other query parameters too', () => {
    for (const mode of ['disable', 'require', 'verify-ca', 'verify-full']) {
      const r = terraformPgConnString(
        `postgres://u:p@db.example.org/x?sslmode=${mode}&application_name=ngsci`,
      );
      assert.equal(new URL(r.connString).searchParams.get('sslmode'), mode);
      assert.equal(new URL(r.connString).searchParams.get('application_name'), 'ngsci');
      assert.equal(r.note, undefined);
    }
  });

  it('prefer becomes require and allow becomes disable, each with a note', () => {
    const prefer = terraformPgConnString('postgres://u:secret-pw@db.example.org/x?sslmode=prefer');
    assert.equal(sslmode('postgres://u:secret-pw@db.example.org/x?sslmode=prefer'), 'require');
    assert.match(prefer.note ?? '', /sslmode=prefer .* sslmode=require/);
    const allow = terraformPgConnString('postgres://u:secret-pw@db.example.org/x?sslmode=allow');
    assert.equal(new URL(allow.connString).searchParams.get('sslmode'), 'disable');
    assert.match(allow.note ?? '', /sslmode=allow/);
    assert.ok(!`${prefer.note}${allow.note}`.includes('secret-pw'));
  });

  it("postgres.js's ssl=true/false becomes the sslmode it means and is not passed on", () => {
    const on = terraformPgConnString('postgres://u@db.example.org/x?ssl=true').connString;
    assert.equal(new URL(on).searchParams.get('sslmode'), 'require');
    assert.equal(new URL(on).searchParams.get('ssl'), null);
    assert.equal(sslmode('postgres://u@db.example.org/x?ssl=false'), 'disable');
  });

  it('an unknown sslmode is refused with a code, without echoing the URL', () => {
    assert.throws(
      () => terraformPgConnString('postgres://u:hunter2-FAKE@db/x?sslmode=sometimes'),
      (e: unknown) =>
        e instanceof PgConnStringError &&
        e.code === 'pg_conn_string_invalid' &&
        /sslmode=sometimes/.test(e.message) &&
        !e.message.includes('hunter2-FAKE'),
    );
  });

  it('a key/value DSN is lib/pq syntax already and passes untouched', () => {
    assert.deepEqual(terraformPgConnString('host=db dbname=x sslmode=disable'), {
      connString: 'host=db dbname=x sslmode=disable',
    });
  });
});
