import { test } from 'node:test';
import assert from 'node:assert/strict';
import { apiServerName, hubBase, hubHomeUrl, labUrl, serverApiUrl, serviceUrl } from './urls';

test('the service sits beside the hub under the same base URL', () => {
  assert.equal(serviceUrl({ hubPrefix: '/hub/', hubHost: '' }), '/services/ngsci/api/v1');
  assert.equal(
    serviceUrl({ hubPrefix: '/jupyter/hub/', hubHost: 'https://hub.example.org' }),
    'https://hub.example.org/jupyter/services/ngsci/api/v1',
  );
  assert.equal(hubBase({ hubPrefix: '/jupyter/hub' }), '/jupyter/');
  assert.equal(hubHomeUrl({ hubPrefix: '/hub/', hubHost: '' }), '/hub/home');
});

test("the hub's default server is `default` in the API, and named servers keep their name", () => {
  assert.equal(apiServerName({ hubServerName: '' }), 'default');
  assert.equal(apiServerName({ hubServerName: 'gpu' }), 'gpu');
  assert.equal(
    labUrl({ hubPrefix: '/hub/', hubHost: '' }, 'researcher', 'default'),
    '/user/researcher/lab',
  );
  assert.equal(
    labUrl({ hubPrefix: '/hub/', hubHost: '' }, 'researcher', 'gpu'),
    '/user/researcher/gpu/lab',
  );
  assert.equal(
    serverApiUrl({ hubPrefix: '/hub/', hubHost: '' }, 'researcher', 'default'),
    '/user/researcher/api',
  );
});
