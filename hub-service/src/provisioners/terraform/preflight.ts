/**
 * Start-up checks of the cloud settings: every problem a cloud would only reveal at a user's
 * launch (or at a machine's boot) is found before the service listens, each naming its variable
 * and never its value (a URL may carry a password, a key is a key). The checks are pure apart from
 * the provider mirror's directory, so tests run them on tables of values.
 */
import { existsSync } from 'node:fs';
import { cidrProblem } from '@ngsci/terraform';
import { describeProviderMirror } from './executor.js';

/** What the service must not start with, and what it should say when it starts anyway. */
export interface PreflightResult {
  problems: string[];
  warnings: string[];
}

/** The raw values the checks look at: the environment's strings, before defaults. */
export interface PreflightInput {
  NGSCI_VM_HUB_URL?: string | undefined;
  NGSCI_TERRAFORM_SERVICE_URL?: string | undefined;
  NGSCI_ALLOW_HTTP_VM_URLS?: boolean | undefined;
  NGSCI_TERRAFORM_HUB_CIDR?: string | undefined;
  NGSCI_TERRAFORM_ALLOW_SSH?: boolean | undefined;
  NGSCI_TERRAFORM_SSH_CIDR?: string | undefined;
  NGSCI_TERRAFORM_SSH_KEYS?: string[] | undefined;
  NGSCI_TERRAFORM_EGRESS_ALLOW?: string | undefined;
  NGSCI_TERRAFORM_IMAGE?: string | undefined;
  NGSCI_TERRAFORM_GPU_IMAGE?: string | undefined;
  NGSCI_TERRAFORM_PROVIDER_MIRROR?: string | undefined;
  NGSCI_AWS_VPC_ID?: string | undefined;
  NGSCI_AWS_SUBNET_ID?: string | undefined;
  NGSCI_AWS_ZONE?: string | undefined;
  NGSCI_AWS_AMI?: string | undefined;
  NGSCI_AWS_DATASET?: unknown;
  NGSCI_GCP_PROJECT?: string | undefined;
  NGSCI_GCP_NETWORK?: string | undefined;
  NGSCI_GCP_SUBNETWORK?: string | undefined;
  NGSCI_GCP_ZONE?: string | undefined;
  NGSCI_GCP_IMAGE?: string | undefined;
  NGSCI_GCP_SERVICE_ACCOUNT?: string | undefined;
  NGSCI_GCP_DATASET?: unknown;
  NGSCI_AZURE_RESOURCE_GROUP?: string | undefined;
  NGSCI_AZURE_SUBNET_ID?: string | undefined;
  NGSCI_AZURE_ZONE?: string | undefined;
  NGSCI_AZURE_ADMIN_SSH_KEY?: string | undefined;
  NGSCI_AZURE_DATASET?: unknown;
}

/**
 * Why `host` (a URL's hostname as WHATWG URL normalizes it: IPv4 in dotted decimal, IPv6 in
 * brackets) is an address another machine cannot reach the hub at, or null.
 */
export function unreachableHost(host: string): string | null {
  const h = host
    .replace(/^\[|\]$/g, '')
    .replace(/\.$/, '')
    .toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return 'a loopback name';
  const v4 = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(h);
  if (v4) return ipv4Problem(v4.slice(1).map(Number));
  if (!h.includes(':')) return null;
  if (h === '::1') return 'a loopback address';
  if (h === '::') return 'the unspecified address (it means "every interface" to a server)';
  if (/^fe[89ab][0-9a-f]?:/.test(h)) return 'a link-local address';
  // an IPv4-mapped address (URL writes ::ffff:127.0.0.1 as ::ffff:7f00:1)
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(h);
  if (mapped) {
    const [hi, lo] = [parseInt(mapped[1]!, 16), parseInt(mapped[2]!, 16)];
    return ipv4Problem([hi >> 8, hi & 255, lo >> 8, lo & 255]);
  }
  return null;
}

function ipv4Problem([a, b]: number[]): string | null {
  if (a === 127) return 'a loopback address';
  if (a === 0) return 'the unspecified address (it means "every interface" to a server)';
  if (a === 169 && b === 254)
    return "a link-local address (the clouds' metadata service lives there)";
  return null;
}

/**
 * Why `value` cannot be a URL machines use (setting `name`), or null. `originOnly`: the value is
 * the hub's address, scheme://host[:port], to which the hub's own paths are added.
 */
export function vmUrlProblem(
  name: string,
  value: string,
  opts: { allowHttp: boolean; originOnly: boolean },
): string | null {
  const example = opts.originOnly
    ? 'https://hub.example.org'
    : 'https://hub.example.org/services/ngsci';
  if (value.startsWith('/'))
    return `${name}: is a path; machines need the full address, such as ${example}`;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return `${name}: is not a URL such as ${example}`;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    return `${name}: must be an https:// URL such as ${example}`;
  if (url.username || url.password) return `${name}: must not carry a user name or password`;
  const where = `${url.protocol}//${url.host}`;
  const why = unreachableHost(url.hostname);
  if (why)
    return `${name}: ${where} is ${why}, which a cloud machine cannot reach the hub at; give the hub's address as the machines' network reaches it`;
  if (url.protocol === 'http:' && !opts.allowHttp)
    return `${name}: must be https://: machines fetch their secrets and send their hub token over it (NGSCI_ALLOW_HTTP_VM_URLS=true allows http, for development only)`;
  if (url.search || url.hash) return `${name}: must not have a query or a fragment`;
  if (opts.originOnly && url.pathname !== '/')
    return `${name}: must be the hub's address only (${where}); the hub's own paths (its base URL, /hub/api, the service prefix) are added to it`;
  return null;
}

/** Why `value` is not a single-user image setting (`docker:<image>` or `pip:<requirements>`). */
export function imageProblem(name: string, value: string): string | null {
  if (value.startsWith('pip:')) {
    const spec = value.slice(4).trim();
    if (!spec) return `${name}: pip: needs the requirements to install, e.g. pip:jupyterhub ngsci`;
    if (/[\n\r\0]/.test(spec)) return `${name}: the pip requirements must be on one line`;
    return null;
  }
  if (!value.startsWith('docker:'))
    return `${name}: must be docker:<image> or pip:<requirements>, e.g. docker:registry.example.org/ngsci/singleuser:cuda12`;
  const ref = value.slice(7);
  if (!ref) return `${name}: docker: needs an image reference`;
  return dockerRefProblem(ref) ? `${name}: ${dockerRefProblem(ref)}` : null;
}

// the grammar of docker image references (the distribution project's reference package)
const DOMAIN_PART = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN = `${DOMAIN_PART}(?:\\.${DOMAIN_PART})*(?::[0-9]+)?`;
const PATH_PART = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const TAG = '[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}';
const DIGEST = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}';
const DOCKER_REF = new RegExp(
  `^(?:${DOMAIN}/)?${PATH_PART}(?:/${PATH_PART})*(?::${TAG})?(?:@${DIGEST})?$`,
);

function dockerRefProblem(ref: string): string | null {
  if (/\s/.test(ref)) return 'the image reference must not contain spaces';
  if (DOCKER_REF.test(ref)) return null;
  const name = ref.replace(/@.*$/, '').replace(/:[^/]*$/, '');
  if (name !== name.toLowerCase() && DOCKER_REF.test(ref.toLowerCase()))
    return 'the image repository must be lowercase (docker refuses upper case in it)';
  return 'is not a docker image reference such as registry.example.org/ngsci/singleuser:cuda12';
}

/** The entries of a comma-separated CIDR list and the problems of each, naming the setting. */
export function cidrListProblems(name: string, value: string): string[] {
  const entries = value.split(',').map((e) => e.trim());
  if (entries.some((e) => e === ''))
    return [`${name}: has an empty entry; separate CIDRs with commas`];
  return entries.flatMap((e) => {
    const p = cidrProblem(e);
    return p ? [`${name}: ${p}`] : [];
  });
}

/**
 * The placements' groups of settings: a cloud is placed when its required settings are all set;
 * any other setting of the group without them is a half-configured cloud, which would otherwise be
 * silently ignored (and the cloud offered as unavailable with no word why).
 */
const PLACEMENTS = [
  {
    cloud: 'AWS',
    required: ['NGSCI_AWS_VPC_ID', 'NGSCI_AWS_SUBNET_ID'],
    optional: ['NGSCI_AWS_ZONE', 'NGSCI_AWS_AMI', 'NGSCI_AWS_DATASET'],
  },
  {
    cloud: 'GCP',
    required: ['NGSCI_GCP_PROJECT'],
    optional: [
      'NGSCI_GCP_NETWORK',
      'NGSCI_GCP_SUBNETWORK',
      'NGSCI_GCP_ZONE',
      'NGSCI_GCP_IMAGE',
      'NGSCI_GCP_SERVICE_ACCOUNT',
      'NGSCI_GCP_DATASET',
    ],
  },
  {
    cloud: 'Azure',
    required: ['NGSCI_AZURE_RESOURCE_GROUP', 'NGSCI_AZURE_SUBNET_ID', 'NGSCI_AZURE_ADMIN_SSH_KEY'],
    optional: ['NGSCI_AZURE_ZONE', 'NGSCI_AZURE_DATASET'],
  },
] as const satisfies readonly {
  cloud: string;
  required: readonly (keyof PreflightInput)[];
  optional: readonly (keyof PreflightInput)[];
}[];

/** What each identifier must look like; a typo here fails only at plan time otherwise. */
const SHAPES: [keyof PreflightInput, RegExp, string][] = [
  ['NGSCI_AWS_VPC_ID', /^vpc-[0-9a-z]+$/, 'an AWS VPC id such as vpc-0123abcd'],
  ['NGSCI_AWS_SUBNET_ID', /^subnet-[0-9a-z]+$/, 'an AWS subnet id such as subnet-0123abcd'],
  ['NGSCI_AWS_AMI', /^ami-[0-9a-z]+$/, 'an AMI id such as ami-0123abcd'],
  ['NGSCI_AWS_ZONE', /^[a-z]{2}(-[a-z]+)+-\d[a-z]$/, 'an availability zone such as us-east-1a'],
  [
    'NGSCI_GCP_PROJECT',
    /^[a-z][a-z0-9-]{4,28}[a-z0-9]$/,
    'a GCP project id (6 to 30 lowercase letters, digits and dashes)',
  ],
  ['NGSCI_GCP_ZONE', /^[a-z]+-[a-z]+\d+-[a-z]$/, 'a GCP zone such as us-central1-a'],
  [
    'NGSCI_AZURE_SUBNET_ID',
    /^\/subscriptions\/[^/]+\/resourceGroups\/[^/]+\/providers\/Microsoft\.Network\/virtualNetworks\/[^/]+\/subnets\/[^/]+$/i,
    'an Azure subnet resource id (/subscriptions/…/resourceGroups/…/providers/Microsoft.Network/virtualNetworks/…/subnets/…)',
  ],
  ['NGSCI_AZURE_ZONE', /^[1-9]$/, 'an Azure availability zone number such as 1'],
  [
    'NGSCI_AZURE_ADMIN_SSH_KEY',
    /^(ssh-rsa|ssh-ed25519|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+={0,3}( .*)?$/,
    'an SSH public key (ssh-rsa or ssh-ed25519 …) on one line',
  ],
];

function isSet(v: unknown): boolean {
  return v !== undefined && v !== null && v !== '';
}

/** Half-configured placements and identifiers of the wrong shape. */
export function placementProblems(s: PreflightInput): string[] {
  const problems: string[] = [];
  for (const p of PLACEMENTS) {
    const missing = p.required.filter((k) => !isSet(s[k]));
    const given = [...p.required, ...p.optional].filter((k) => isSet(s[k]));
    if (missing.length && given.length)
      problems.push(
        `${missing.join(', ')}: required to place machines on ${p.cloud} (${given.join(', ')} ${given.length === 1 ? 'is' : 'are'} set); set all of ${p.required.join(', ')}, or none of the ${p.cloud} settings`,
      );
  }
  for (const [key, shape, what] of SHAPES) {
    const v = s[key];
    if (typeof v === 'string' && v !== '' && !shape.test(v))
      problems.push(`${key}: is not ${what}`);
  }
  // a hub with no cloud placed at all is config.ts's to refuse (it also decides the offered clouds)
  return problems;
}

/** The VM-facing URLs: NGSCI_VM_HUB_URL, and NGSCI_TERRAFORM_SERVICE_URL (an override, or deprecated alone). */
export function vmUrlProblems(s: PreflightInput): PreflightResult {
  const allowHttp = s.NGSCI_ALLOW_HTTP_VM_URLS === true;
  const problems: string[] = [];
  const warnings: string[] = [];
  const hub = s.NGSCI_VM_HUB_URL;
  const service = s.NGSCI_TERRAFORM_SERVICE_URL;
  if (!isSet(hub) && !isSet(service)) {
    problems.push(
      "NGSCI_VM_HUB_URL: required with NGSCI_PROVISIONER=terraform: the hub's address as cloud machines reach it, such as https://hub.example.org (their hub API, activity and ngsci API URLs are made from it)",
    );
    return { problems, warnings };
  }
  if (isSet(hub)) {
    const p = vmUrlProblem('NGSCI_VM_HUB_URL', hub!, { allowHttp, originOnly: true });
    if (p) problems.push(p);
  }
  if (isSet(service)) {
    const p = vmUrlProblem('NGSCI_TERRAFORM_SERVICE_URL', service!, {
      allowHttp,
      originOnly: false,
    });
    if (p) problems.push(p);
    else if (!isSet(hub))
      warnings.push(
        "NGSCI_TERRAFORM_SERVICE_URL without NGSCI_VM_HUB_URL is deprecated: machines reach the hub at its origin; set NGSCI_VM_HUB_URL to the hub's address (NGSCI_TERRAFORM_SERVICE_URL stays an override for a service reached elsewhere)",
      );
  }
  return { problems, warnings };
}

/** Every start-up check of the terraform provisioner's settings. */
export function terraformPreflight(s: PreflightInput): PreflightResult {
  const urls = vmUrlProblems(s);
  const problems = [...urls.problems];
  const warnings = [...urls.warnings];

  if (!isSet(s.NGSCI_TERRAFORM_HUB_CIDR))
    problems.push(
      'NGSCI_TERRAFORM_HUB_CIDR: required with NGSCI_PROVISIONER=terraform: the network the hub and its proxy reach machines from, such as 10.0.0.0/24',
    );
  else {
    const p = cidrProblem(s.NGSCI_TERRAFORM_HUB_CIDR!);
    if (p) problems.push(`NGSCI_TERRAFORM_HUB_CIDR: ${p}`);
  }
  if (isSet(s.NGSCI_TERRAFORM_SSH_CIDR)) {
    const p = cidrProblem(s.NGSCI_TERRAFORM_SSH_CIDR!);
    if (p) problems.push(`NGSCI_TERRAFORM_SSH_CIDR: ${p}`);
  }
  if (s.NGSCI_TERRAFORM_ALLOW_SSH && !s.NGSCI_TERRAFORM_SSH_KEYS?.length)
    warnings.push(
      'NGSCI_TERRAFORM_ALLOW_SSH=true without NGSCI_TERRAFORM_SSH_KEYS: port 22 is open but no key is installed',
    );
  if (isSet(s.NGSCI_TERRAFORM_EGRESS_ALLOW))
    problems.push(
      ...cidrListProblems('NGSCI_TERRAFORM_EGRESS_ALLOW', s.NGSCI_TERRAFORM_EGRESS_ALLOW!),
    );

  for (const key of ['NGSCI_TERRAFORM_IMAGE', 'NGSCI_TERRAFORM_GPU_IMAGE'] as const) {
    const v = s[key];
    // no default: a default name would be pulled from a public registry namespace nobody here
    // controls, and the machine runs that image with the user's hub token
    if (!isSet(v))
      problems.push(
        `${key}: required: build docker/singleuser.Dockerfile (${key === 'NGSCI_TERRAFORM_IMAGE' ? 'the CPU build' : 'its CUDA build'}), push it to your registry and name it here, e.g. docker:registry.example.org/ngsci/singleuser:${key === 'NGSCI_TERRAFORM_IMAGE' ? 'cpu' : 'cuda12'} (docs/clouds.md, "Images")`,
      );
    else {
      const p = imageProblem(key, v!);
      if (p) problems.push(p);
    }
  }

  if (isSet(s.NGSCI_TERRAFORM_PROVIDER_MIRROR)) {
    const mirror = s.NGSCI_TERRAFORM_PROVIDER_MIRROR!;
    try {
      describeProviderMirror(mirror);
      if (mirror.startsWith('/') && !existsSync(mirror))
        problems.push(`NGSCI_TERRAFORM_PROVIDER_MIRROR: the directory ${mirror} does not exist`);
    } catch (err) {
      problems.push(`NGSCI_TERRAFORM_PROVIDER_MIRROR: ${(err as Error).message}`);
    }
  }

  problems.push(...placementProblems(s));
  return { problems, warnings };
}
