import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  awsDescription,
  cidrProblem,
  gcpDiskZone,
  iamTagValues,
  tagValues,
  terraformLiteral,
  validateInstanceOptions,
} from './options.js';
import { options } from './test-fixtures.js';

describe('cidrProblem: the networks every cloud firewall accepts', () => {
  const accepted = ['10.0.0.0/24', '192.168.0.0/16', '203.0.113.7/32', '100.64.0.0/10'];
  for (const cidr of accepted) it(`accepts ${cidr}`, () => assert.equal(cidrProblem(cidr), null));

  const refused: [string, RegExp][] = [
    ['0.0.0.0/0', /whole internet/],
    ['8.8.8.8/0', /whole internet/],
    ['::/0', /IPv6/],
    ['fd00::/8', /IPv6/],
    ['10.0.0.1/24', /host bits set; the network is 10\.0\.0\.0\/24/],
    ['192.168.1.0/23', /the network is 192\.168\.0\.0\/23/],
    ['10.0.0.0/33', /prefix length above 32/],
    ['256.0.0.0/8', /above 255/],
    ['010.0.0.0/8', /leading zeros/],
    ['10.0.0.0', /not an IPv4 CIDR/],
    ['not-a-cidr/99', /not an IPv4 CIDR/],
    [' 10.0.0.0/24', /not an IPv4 CIDR/],
    ['', /required/],
  ];
  for (const [cidr, why] of refused)
    it(`refuses ${JSON.stringify(cidr)}`, () => assert.match(cidrProblem(cidr) ?? 'accepted', why));

  it('validateInstanceOptions uses it for hubCidr, sshCidr and every egress network', () => {
    const cases: [Partial<Parameters<typeof options>[2]>, RegExp][] = [
      [{ hubCidr: 'fd00::/64' }, /hubCidr: fd00::\/64 is IPv6/],
      [{ hubCidr: '10.20.0.5/24' }, /hubCidr: .*the network is 10\.20\.0\.0\/24/],
      [{ sshCidr: '192.0.2.1/28' }, /sshCidr: .*the network is 192\.0\.2\.0\/28/],
      [
        { egressAllowCidrs: ['10.1.0.0/16', '0.0.0.0/0'] },
        /egressAllowCidrs\[1\]: .*whole internet/,
      ],
    ];
    for (const [extra, why] of cases)
      assert.throws(() => validateInstanceOptions(options('aws', 'cpu', extra)), why);
    validateInstanceOptions(options('aws', 'cpu', { egressAllowCidrs: [] }));
  });
});

describe('names reach Terraform as written', () => {
  it('escapes the two template openers and nothing else', () => {
    assert.equal(terraformLiteral('${x}'), '$${x}');
    assert.equal(terraformLiteral('%{y}'), '%%{y}');
    // an already escaped-looking name keeps its extra $: Terraform reads "$$${" as "$" + "${"
    assert.equal(terraformLiteral('$${z}'), '$$${z}');
    assert.equal(terraformLiteral('a"b\\c $ % {}'), 'a"b\\c $ % {}');
  });

  it('tag values keep every character, at most 256 of them', () => {
    const long = 'é'.repeat(300);
    const tags = tagValues({ user: '${x} ünï ☃', server: long });
    assert.equal(tags.user, '$${x} ünï ☃');
    assert.equal(Array.from(tags.server as string).length, 256);
  });

  it('IAM tags and security group descriptions drop what AWS refuses', () => {
    assert.deepEqual(iamTagValues({ user: 'bob@example.org ${x} "q" é' }), {
      user: 'bob@example.org __x_ _q_ é',
    });
    assert.equal(awsDescription('ngsci ${x}/"名前" %{y}'), 'ngsci $${x}/____ _{y}');
  });
});

describe('zones', () => {
  it('reads the zone in a GCP disk id', () => {
    assert.equal(gcpDiskZone('projects/p/zones/us-central1-b/disks/home'), 'us-central1-b');
    assert.equal(
      gcpDiskZone('https://www.googleapis.com/compute/v1/projects/p/zones/europe-west4-a/disks/d'),
      'europe-west4-a',
    );
    assert.equal(gcpDiskZone('imagenet'), undefined);
  });

  it('refuses a zone that is not a plain zone name', () => {
    assert.throws(
      () => validateInstanceOptions(options('aws', 'cpu', { zone: 'us-east-1a" || true || "' })),
      /is not an AWS zone such as us-east-1a/,
    );
    assert.throws(
      () => validateInstanceOptions(options('azure', 'cpu', { zone: 'eastus-1' })),
      /not an Azure zone number/,
    );
    validateInstanceOptions(options('azure', 'cpu', { zone: '2' }));
  });
});
