/**
 * The user-data every ngsci machine boots with, the same on all clouds: mount the home disk
 * read-write (growing its file system when the disk was grown) and the data set read-only, then
 * systemd units, each started only when the one before it succeeded:
 *   1. ngsci-bootstrap trades the single-use bootstrap token, with the machine's cloud identity
 *      proof from its metadata service, for the server's environment and the agent's credential
 *      (`POST <serviceUrl>/api/v1/bootstrap`), over https only unless the development setting
 *      allowed http; retried while the service answers 503/5xx. It runs before the packages and
 *      the image are installed, so the token's lifetime is not spent on a multi-GB pull. After a
 *      reboot (the environment lived in tmpfs, the token is spent) it reports `rebooted` and
 *      stops: the service replaces the instance instead of billing a dead one;
 *   2. ngsci-firewall keeps the notebook's code (its uid on the host, every container on a
 *      docker bridge) away from the clouds' metadata services; root and the agent keep them;
 *   3. ngsci-check makes sure of what a user would otherwise find out the hard way: the notebook's
 *      account cannot become root, the hub's API answers from the machine, the GPU is visible
 *      inside the container, the image has the agent; it reports the outcome
 *      (`POST /api/v1/agent/boot`, with the agent's credential) and fails on any problem;
 *   4. ngsci-singleuser runs `jupyterhub-singleuser` as the dedicated notebook account
 *      (NOTEBOOK_UID, never the image's default user, who has sudo), without new privileges;
 *   5. ngsci-agent runs `ngsci agent` beside it as root, its credential in /etc/ngsci/agent.env
 *      (0600 root), restarted whenever it ends: the notebook's user can neither read it nor stop it.
 * The environment (which holds the hub API token) only ever lives in /run (tmpfs, root only) and
 * never holds the agent's credential; the user-data carries nothing but the bootstrap token,
 * which is useless once spent. Credentials go to curl in root-only header files, never in argv.
 *
 * The document is `#cloud-config` followed by JSON, which is valid YAML, so no quoting bugs. It may
 * hold Terraform references (cdktf tokens) such as a volume id; the scripts themselves never use
 * `${` or `%{`, so Terraform's template syntax can't capture them.
 */
import type { Cloud, DatasetSpec, InstanceOptions, SingleuserImage } from './options.js';

export type DatasetMount =
  { kind: 'disk'; devices: string[] } | { kind: 'bucket'; cloud: Cloud; ref: string };

export interface CloudInitOptions {
  cloud: Cloud;
  instanceId: string;
  serviceUrl: string;
  bootstrapToken: string;
  singleuserPort: number;
  image: SingleuserImage;
  gpu: boolean;
  /** candidate device paths of the home disk; the first that appears is used */
  homeDevices: string[];
  dataset: DatasetMount | null;
  sshAuthorizedKeys?: string[];
  /** the agent's command inside the image (docker) or the venv (pip) */
  agentCommand?: string[];
  /** development only (NGSCI_ALLOW_HTTP_VM_URLS): the machine may fetch its secrets over http */
  allowHttp?: boolean;
}

interface WriteFile {
  path: string;
  content: string;
  permissions: string;
  owner?: string;
}

export const HOME_MOUNT = '/home/jovyan';
export const DATASET_MOUNT = '/mnt/dataset';
const ENV_JSON = '/run/ngsci/env.json';
/** the agent's credential: root only, on the root disk the notebook's user cannot read */
export const AGENT_ENV = '/etc/ngsci/agent.env';

/** The account the notebook runs as on the machine (and inside its container). */
export const NOTEBOOK_USER = 'jovyan';
/**
 * Its uid: not 1000, which the image's default user (ubuntu, azureuser; passwordless sudo) holds
 * before cloud-init makes ours, and well above the next uids the clouds' guest agents hand out to
 * SSH users. The boot check refuses to start the server if the account is not this one.
 */
export const NOTEBOOK_UID = 2000;
/** `users`, the group docker-stacks images give their notebook files */
export const NOTEBOOK_GID = 100;
/** the uid notebooks had before NOTEBOOK_UID: a home disk still owned by it is handed over once */
const PREVIOUS_NOTEBOOK_UID = 1000;
/**
 * The metadata services of the three clouds (169.254.169.254 is also metadata.google.internal;
 * 168.63.129.16 is Azure's wireserver) and their IPv6 addresses (AWS, GCP). DNS (port 53) to them
 * stays open: on GCP and Azure they are the machine's resolver.
 */
const METADATA_V4 = ['169.254.169.254', '168.63.129.16'];
const METADATA_V6 = ['fd00:ec2::254', 'fd20:ce::254'];

/** Builds a cloud-config document piece by piece; `CloudInit.forInstance` is what the stacks use. */
export class CloudInit {
  private readonly files: WriteFile[] = [];
  private readonly commands: string[][] = [];
  private readonly packages = new Set<string>();
  private readonly users: (string | Record<string, unknown>)[] = ['default'];
  private sshKeys: string[] = [];

  writeFile(path: string, content: string, permissions = '0644'): this {
    this.files.push({ path, content, permissions, owner: 'root:root' });
    return this;
  }

  runcmd(...argv: string[]): this {
    this.commands.push(argv);
    return this;
  }

  install(...names: string[]): this {
    names.forEach((n) => this.packages.add(n));
    return this;
  }

  user(spec: Record<string, unknown>): this {
    this.users.push(spec);
    return this;
  }

  authorizedKeys(keys: string[]): this {
    this.sshKeys = [...keys];
    return this;
  }

  render(): string {
    const doc: Record<string, unknown> = {
      users: this.users,
      package_update: this.packages.size > 0,
      packages: [...this.packages].sort(),
      write_files: this.files,
      runcmd: this.commands,
    };
    if (this.sshKeys.length > 0) doc.ssh_authorized_keys = this.sshKeys;
    const text = `#cloud-config\n${JSON.stringify(doc, null, 1)}\n`;
    // cdktf tokens look like ${TfToken[TOKEN.1]}; anything else with ${ or %{ would be eaten by Terraform
    const stray = text.replace(/\$\{TfToken\[[^\]]+\]\}/g, '').match(/\$\{|%\{/);
    if (stray)
      throw new Error('cloud-init scripts must not contain ${ or %{ (Terraform template syntax)');
    return text;
  }

  static forInstance(o: CloudInitOptions): CloudInit {
    const ci = new CloudInit();
    // no sudo, no admin group, primary group `users`; the boot check verifies all of it
    ci.user({
      name: NOTEBOOK_USER,
      uid: String(NOTEBOOK_UID),
      primary_group: 'users',
      no_user_group: true,
      shell: '/bin/bash',
      lock_passwd: true,
      no_create_home: true,
    });
    if (o.sshAuthorizedKeys?.length) ci.authorizedKeys(o.sshAuthorizedKeys);
    ci.install('curl', 'python3', 'iptables');

    ci.writeFile(
      '/etc/ngsci/bootstrap.env',
      [
        `NGSCI_SERVICE_URL=${o.serviceUrl.replace(/\/+$/, '')}`,
        `NGSCI_INSTANCE_ID=${o.instanceId}`,
        `NGSCI_CLOUD=${o.cloud}`,
        `NGSCI_ALLOW_HTTP=${o.allowHttp ? 1 : 0}`,
        `NGSCI_DATASET_PATH=${o.dataset ? DATASET_MOUNT : ''}`,
        `NGSCI_BOOTSTRAP_TOKEN=${o.bootstrapToken}`,
        '',
      ].join('\n'),
      '0600',
    );
    const lib = '/usr/local/lib/ngsci';
    ci.writeFile(`${lib}/common.sh`, COMMON_SH, '0600');
    ci.writeFile(`${lib}/bootstrap.sh`, BOOTSTRAP_SH, '0700');
    ci.writeFile(`${lib}/bootstrap-json.py`, BOOTSTRAP_JSON_PY, '0700');
    ci.writeFile(`${lib}/boot-report.sh`, BOOT_REPORT_SH, '0700');
    ci.writeFile(`${lib}/notebook-user.py`, NOTEBOOK_USER_PY, '0700');
    ci.writeFile(`${lib}/check.sh`, checkScript(o), '0700');
    ci.writeFile(`${lib}/firewall.sh`, firewallScript(o), '0700');
    ci.writeFile(`${lib}/with-env.py`, WITH_ENV_PY, '0700');
    ci.writeFile(`${lib}/mount.sh`, mountScript(o), '0700');
    ci.writeFile(`${lib}/install.sh`, installScript(o), '0700');

    const docker = o.image.kind === 'docker';
    ci.writeFile(
      '/etc/systemd/system/ngsci-mounts.service',
      unit({
        description: 'ngsci: mount the home disk (grown to fill it) and the read-only data set',
        after: 'network-online.target',
        wants: 'network-online.target',
        type: 'oneshot',
        exec: `${lib}/mount.sh`,
        remain: true,
      }),
    );
    ci.writeFile(
      '/etc/systemd/system/ngsci-bootstrap.service',
      unit({
        description:
          'ngsci: prove the cloud identity and trade the single-use bootstrap token for the server environment',
        after: 'network-online.target ngsci-mounts.service',
        wants: 'network-online.target',
        requires: 'ngsci-mounts.service',
        type: 'oneshot',
        exec: `${lib}/bootstrap.sh`,
        remain: true,
      }),
    );
    ci.writeFile(
      '/etc/systemd/system/ngsci-firewall.service',
      unit({
        description: "ngsci: keep the notebook's code away from the cloud's metadata service",
        // docker builds DOCKER-USER when it starts; the rules follow a restart of docker
        after: docker ? 'network-online.target docker.service' : 'network-online.target',
        ...(docker ? { requires: 'docker.service', partOf: 'docker.service' } : {}),
        type: 'oneshot',
        exec: `${lib}/firewall.sh`,
        remain: true,
      }),
    );
    ci.writeFile(
      '/etc/systemd/system/ngsci-check.service',
      unit({
        description:
          'ngsci: check the notebook account, the hub, the GPU and the agent, and report to the service',
        after: 'ngsci-bootstrap.service ngsci-firewall.service',
        requires: 'ngsci-bootstrap.service ngsci-firewall.service',
        type: 'oneshot',
        exec: `${lib}/check.sh`,
        remain: true,
      }),
    );
    const [singleuser, agent] = serviceCommands(o);
    ci.writeFile(
      '/etc/systemd/system/ngsci-singleuser.service',
      unit({
        description: 'ngsci: jupyterhub-singleuser',
        after: 'ngsci-check.service',
        requires: 'ngsci-bootstrap.service ngsci-firewall.service ngsci-check.service',
        type: 'simple',
        ...(docker ? {} : { environment: [`HOME=${HOME_MOUNT}`, `USER=${NOTEBOOK_USER}`] }),
        exec: `/usr/bin/python3 ${lib}/with-env.py ${singleuser}`,
        restart: 'on-failure',
      }),
    );
    ci.writeFile(
      '/etc/systemd/system/ngsci-agent.service',
      unit({
        description: 'ngsci agent: GPU utilisation, data-access audit, spot warnings',
        after: 'ngsci-check.service ngsci-singleuser.service',
        requires: 'ngsci-bootstrap.service ngsci-check.service',
        type: 'simple',
        // root, with its own credential: the notebook's user can't read it or kill it
        user: 'root',
        environmentFile: AGENT_ENV,
        exec: `/usr/bin/python3 ${lib}/with-env.py ${agent}`,
        restart: 'always',
      }),
    );

    ci.runcmd('systemctl', 'daemon-reload');
    // the token first: its lifetime counts from when the machine exists, not from the image pull
    ci.runcmd('systemctl', 'enable', '--now', 'ngsci-mounts.service', 'ngsci-bootstrap.service');
    ci.runcmd(`${lib}/install.sh`);
    ci.runcmd(
      'systemctl',
      'enable',
      '--now',
      'ngsci-firewall.service',
      'ngsci-check.service',
      'ngsci-singleuser.service',
      'ngsci-agent.service',
    );
    return ci;
  }
}

/** The user-data for an instance, rendered. */
export function renderUserData(o: CloudInitOptions): string {
  return CloudInit.forInstance(o).render();
}

/** What every cloud's user-data takes from the instance's options as they are. */
export function userDataBasics(
  o: InstanceOptions,
): Pick<
  CloudInitOptions,
  | 'instanceId'
  | 'serviceUrl'
  | 'allowHttp'
  | 'bootstrapToken'
  | 'singleuserPort'
  | 'image'
  | 'sshAuthorizedKeys'
> {
  return {
    instanceId: o.instanceId,
    serviceUrl: o.serviceUrl,
    allowHttp: o.allowHttp === true,
    bootstrapToken: o.bootstrapToken,
    singleuserPort: o.singleuserPort,
    image: o.image,
    sshAuthorizedKeys: o.allowSsh ? o.sshAuthorizedKeys : [],
  };
}

export function datasetMount(
  cloud: Cloud,
  dataset: DatasetSpec | null,
  diskDevices: string[],
): DatasetMount | null {
  if (!dataset) return null;
  return dataset.kind === 'disk'
    ? { kind: 'disk', devices: diskDevices }
    : { kind: 'bucket', cloud, ref: dataset.ref };
}

interface UnitSpec {
  description: string;
  after: string;
  wants?: string;
  requires?: string;
  partOf?: string;
  type: 'oneshot' | 'simple';
  exec: string;
  remain?: boolean;
  restart?: string;
  user?: string;
  environment?: string[];
  environmentFile?: string;
}

function unit(u: UnitSpec): string {
  return [
    '[Unit]',
    `Description=${u.description}`,
    `After=${u.after}`,
    ...(u.wants ? [`Wants=${u.wants}`] : []),
    ...(u.requires ? [`Requires=${u.requires}`] : []),
    ...(u.partOf ? [`PartOf=${u.partOf}`] : []),
    '',
    '[Service]',
    `Type=${u.type}`,
    ...(u.user ? [`User=${u.user}`] : []),
    ...(u.environment ?? []).map((e) => `Environment=${e}`),
    ...(u.environmentFile ? [`EnvironmentFile=${u.environmentFile}`] : []),
    `ExecStart=${u.exec}`,
    ...(u.remain ? ['RemainAfterExit=yes'] : []),
    ...(u.restart ? [`Restart=${u.restart}`, 'RestartSec=5'] : []),
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}

const agentArgv = (o: CloudInitOptions): string[] => o.agentCommand ?? ['ngsci', 'agent'];
const NOTEBOOK_IDS = `${NOTEBOOK_UID}:${NOTEBOOK_GID}`;
/** runs a command as the notebook's account, which can never gain privileges (setuid, file caps) */
const AS_NOTEBOOK = `setpriv --reuid=${NOTEBOOK_UID} --regid=${NOTEBOOK_GID} --init-groups --no-new-privs`;

function serviceCommands(o: CloudInitOptions): [string, string] {
  const agent = agentArgv(o);
  const port = String(o.singleuserPort);
  const singleuserArgs = ['jupyterhub-singleuser', '--ip=0.0.0.0', `--port=${port}`];
  if (o.image.kind === 'docker') {
    const gpus = o.gpu ? ' --gpus all' : '';
    const common = `--rm${gpus} --user ${NOTEBOOK_IDS} --security-opt no-new-privileges -v ${HOME_MOUNT}:${HOME_MOUNT} -v ${DATASET_MOUNT}:${DATASET_MOUNT}:ro`;
    const dataset = `-v ${DATASET_MOUNT}:${DATASET_MOUNT}:ro`;
    // the notebook: bridge network (ngsci-firewall rejects its connections to the metadata
    // service) as the notebook's account. The agent: root in its own container with its
    // credential from the root-only file, on the host network for the spot notices in the
    // metadata service and the server's kernels on loopback; no home mount, so nothing the user
    // wrote is on its path
    return [
      `/usr/bin/docker run --name ngsci-singleuser ${common} -p ${port}:${port} ${o.image.ref} ${singleuserArgs.join(' ')}`,
      `/usr/bin/docker run --name ngsci-agent --rm${gpus} --user 0:0 --network host --env-file ${AGENT_ENV} ${dataset} ${o.image.ref} ${agent.join(' ')}`,
    ];
  }
  return [
    `/usr/bin/${AS_NOTEBOOK} /opt/ngsci/venv/bin/${singleuserArgs.join(' ')}`,
    // root: systemd's User=root and EnvironmentFile give it the credential; no setpriv
    `/opt/ngsci/venv/bin/${agent.join(' ')}`,
  ];
}

/**
 * common.sh, sourced by the boot scripts: where things are, the service's settings, and the one
 * rule for reaching the service (what goes there holds a secret: https only, unless the
 * development setting allowed http). NGSCI_TEST_ROOT (and, in bootstrap.sh,
 * NGSCI_TEST_METADATA_URL; in the retry loops, NGSCI_TEST_RETRY_SECONDS) exist only so a test can
 * run the scripts in a scratch folder against test doubles; systemd never sets them.
 */
const COMMON_SH = String.raw`# Sourced by ngsci's boot scripts: paths, the service's settings, how to reach the service.
root=$(printenv NGSCI_TEST_ROOT || true)
etc="$root/etc/ngsci"
run="$root/run/ngsci"
lib="$root/usr/local/lib/ngsci"
pause=$(printenv NGSCI_TEST_RETRY_SECONDS || echo 5)
set -a
. "$etc/bootstrap.env"
set +a
# what goes to the service holds the bootstrap token or the agent's credential: https only
case "$NGSCI_SERVICE_URL" in
  https://*) proto='=https' ;;
  http://*)
    if [ "$NGSCI_ALLOW_HTTP" != 1 ]; then
      echo "refusing to fetch secrets over plain http from $NGSCI_SERVICE_URL" >&2; exit 1
    fi
    proto='=http,https' ;;
  *) echo "not an http(s) service URL: $NGSCI_SERVICE_URL" >&2; exit 1 ;;
esac
`;

/**
 * bootstrap.sh: fetch this machine's identity proof from the metadata service, trade it with the
 * bootstrap token for the server's environment and the agent's credential, and keep them apart:
 * the environment in /run/ngsci/env.json, the credential in /etc/ngsci/agent.env (0600 root).
 * Transient failures (no network yet, 5xx, and the 503 that means terraform has not reported the
 * machine yet) are retried, honouring Retry-After; a refusal (4xx) is final. A credential without
 * an environment means this boot is a restart: reported as `rebooted`, and the server stays down.
 */
const BOOTSTRAP_SH = String.raw`#!/bin/bash
# Prove who this machine is, trade the single-use bootstrap token, once per boot.
set -euo pipefail
umask 077
. "$(dirname "$0")/common.sh"
md=$(printenv NGSCI_TEST_METADATA_URL || echo http://169.254.169.254)
install -d -m 0700 "$run"
if [ -s "$run/env.json" ] && [ -s "$etc/agent.env" ]; then exit 0; fi
if [ -s "$etc/agent.env" ]; then
  # /run is tmpfs and the token is spent: this server cannot come back. Say so, so the service
  # replaces the instance instead of billing a machine nobody can use
  why="the machine restarted: its server's environment was kept in memory only and its single-use bootstrap token is spent"
  echo "$why; the server stays down and the service replaces the instance" >&2
  "$lib/boot-report.sh" failed rebooted "$why" || true
  exit 1
fi
if [ -z "$NGSCI_BOOTSTRAP_TOKEN" ]; then echo "bootstrap token already spent" >&2; exit 1; fi
if [ "$proto" != '=https' ]; then echo "warning: fetching secrets over plain http (development setting)" >&2; fi
work="$run/bootstrap"
install -d -m 0700 "$work"
trap 'rm -rf "$work"' EXIT
# the token goes to curl in a root-only file: a command line is readable by every user
printf 'Authorization: Bearer %s\n' "$NGSCI_BOOTSTRAP_TOKEN" > "$work/auth"

# the cloud's signed statement of who this machine is; fetched afresh for every attempt
proof() {
  rm -f "$work"/proof.*
  case "$NGSCI_CLOUD" in
    aws)
      t=$(curl -fsS --max-time 5 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 300' "$md/latest/api/token")
      curl -fsS --max-time 5 -H "X-aws-ec2-metadata-token: $t" -o "$work/proof.document" "$md/latest/dynamic/instance-identity/document"
      curl -fsS --max-time 5 -H "X-aws-ec2-metadata-token: $t" -o "$work/proof.pkcs7" "$md/latest/dynamic/instance-identity/pkcs7" ;;
    gcp)
      # needs a service account on the machine; the audience binds the token to this service
      curl -fsS --max-time 5 -G -H 'Metadata-Flavor: Google' --data-urlencode "audience=$NGSCI_SERVICE_URL" \
        --data-urlencode format=full -o "$work/proof.jwt" "$md/computeMetadata/v1/instance/service-accounts/default/identity" ;;
    azure)
      # ten digits of the token's sha256: the attested data is good for this redemption only
      nonce=$(printf '%010d' "$((16#$(printf '%s' "$NGSCI_BOOTSTRAP_TOKEN" | sha256sum | cut -c1-8)))")
      curl -fsS --max-time 5 -H 'Metadata: true' -o "$work/proof.attested" \
        "$md/metadata/attested/document?api-version=2021-02-01&nonce=$nonce" ;;
    *) echo "unknown cloud: $NGSCI_CLOUD" >&2; return 1 ;;
  esac
  python3 "$lib/bootstrap-json.py" body "$work" > "$work/body.json"
}

attempt=0
while :; do
  attempt=$((attempt + 1))
  rm -f "$work/headers" "$work/response"
  code=metadata
  if proof; then
    # '%''{...}' keeps Terraform's template syntax out of this file
    code=$(curl -sS --proto "$proto" --max-time 30 -o "$work/response" -D "$work/headers" \
      -w '%''{http_code}' -X POST -H "@$work/auth" \
      -H "Content-Type: application/json" --data-binary "@$work/body.json" \
      "$NGSCI_SERVICE_URL/api/v1/bootstrap") || code=000
  fi
  case "$code" in
    200) break ;;
    4??)
      echo "the service refused this machine ($code): $(head -c 400 "$work/response" 2>/dev/null || true)" >&2
      exit 1 ;;
  esac
  if [ "$attempt" -ge 120 ]; then echo "bootstrap gave up after $attempt attempts (last: $code)" >&2; exit 1; fi
  wait=$(awk 'tolower($1) == "retry-after:" { print int($2) }' "$work/headers" 2>/dev/null | tail -n 1 || true)
  if ! [ "$wait" -ge 1 ] 2>/dev/null || [ "$wait" -gt 60 ]; then wait=5; fi
  echo "bootstrap attempt $attempt: $code; again in $wait s" >&2
  sleep "$wait"
done
python3 "$lib/bootstrap-json.py" split "$work/response" "$run/env.json.tmp" "$etc/agent.env.tmp"
mv "$etc/agent.env.tmp" "$etc/agent.env"
mv "$run/env.json.tmp" "$run/env.json"
# single use: forget it, so nothing on disk can replay it
sed -i 's/^NGSCI_BOOTSTRAP_TOKEN=.*/NGSCI_BOOTSTRAP_TOKEN=/' "$etc/bootstrap.env"
`;

/**
 * bootstrap-json.py: the JSON half of bootstrap.sh. `body` builds the request from the proof
 * files; `split` writes the server's environment (without the agent's credential) and the
 * agent's root-only environment file from the answer.
 */
const BOOTSTRAP_JSON_PY = String.raw`import json, os, re, sys

def body(work):
    cloud = os.environ["NGSCI_CLOUD"]
    read = lambda name: open(os.path.join(work, "proof." + name)).read()
    if cloud == "aws":
        identity = {"cloud": "aws", "document": read("document"), "pkcs7": read("pkcs7").strip()}
    elif cloud == "gcp":
        identity = {"cloud": "gcp", "jwt": read("jwt").strip()}
    else:
        identity = {"cloud": "azure", "attested": json.loads(read("attested"))["signature"]}
    json.dump({"instanceId": os.environ["NGSCI_INSTANCE_ID"], "identity": identity}, sys.stdout)

def split(response, env_json, agent_env):
    answer = json.load(open(response))
    env = answer["env"]
    token = answer.get("agentToken", "")
    if token and not re.fullmatch(r"[A-Za-z0-9_-]+", token):
        sys.exit("the agent credential has unexpected characters")
    env.pop("NGSCI_AGENT_TOKEN", None)
    old = os.umask(0o077)
    with open(env_json, "w") as f:
        json.dump({"env": env}, f)
    lines = ["NGSCI_AGENT_TOKEN=" + token, "NGSCI_INSTANCE_ID=" + os.environ["NGSCI_INSTANCE_ID"], "NGSCI_CLOUD=" + os.environ["NGSCI_CLOUD"]]
    if os.environ.get("NGSCI_DATASET_PATH"):
        lines.append("NGSCI_DATASET_PATH=" + os.environ["NGSCI_DATASET_PATH"])
    # where the agent reports (the service as machines reach it) and the server whose kernels it
    # watches (on this machine): one line each, no spaces
    for name in ("NGSCI_API_URL", "JUPYTERHUB_SERVICE_URL"):
        url = env.get(name, "")
        if url and not re.fullmatch(r"https?://\S+", url):
            sys.exit(name + " has unexpected characters")
        if url:
            lines.append(name + "=" + url)
    with open(agent_env, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.chmod(agent_env, 0o600)
    os.chmod(env_json, 0o600)
    os.umask(old)

if sys.argv[1] == "body":
    body(sys.argv[2])
else:
    split(sys.argv[2], sys.argv[3], sys.argv[4])
`;

/**
 * boot-report.sh: tells the service what the machine's checks found, with the agent's credential
 * (`boot-report.sh ready`, `boot-report.sh failed CODE MESSAGE`); retried while the service
 * cannot be reached, final on a refusal.
 */
const BOOT_REPORT_SH = String.raw`#!/bin/bash
# Report this machine's boot checks to the service: boot-report.sh ready | failed CODE MESSAGE
set -euo pipefail
umask 077
. "$(dirname "$0")/common.sh"
token=$(sed -n 's/^NGSCI_AGENT_TOKEN=//p' "$etc/agent.env" 2>/dev/null || true)
if [ -z "$token" ]; then echo "no agent credential in $etc/agent.env: nothing to report with" >&2; exit 1; fi
install -d -m 0700 "$run"
work=$(mktemp -d "$run/report.XXXXXX")
trap 'rm -rf "$work"' EXIT
printf 'Authorization: Bearer %s\n' "$token" > "$work/auth"
python3 -c '
import json, sys
a = sys.argv[1:]
report = {"stage": "ready"} if a[0] == "ready" else {"stage": "failed", "code": a[1], "message": (a[2] or a[1])[:2000]}
json.dump(report, sys.stdout)' "$@" > "$work/body.json"
code=000
for attempt in $(seq 1 24); do
  code=$(curl -sS --proto "$proto" --max-time 15 -o "$work/response" -w '%''{http_code}' \
    -X POST -H "@$work/auth" -H 'Content-Type: application/json' --data-binary "@$work/body.json" \
    "$NGSCI_SERVICE_URL/api/v1/agent/boot") || code=000
  case "$code" in
    2??) exit 0 ;;
    4??) echo "the service refused the boot report ($code): $(head -c 400 "$work/response")" >&2; exit 1 ;;
  esac
  sleep "$pause"
done
echo "could not reach the service to report the boot (last: $code)" >&2
exit 1
`;

/**
 * notebook-user.py: is the notebook's account the dedicated, unprivileged one? Reads passwd, group
 * and sudoers (under the test root in tests) and, on a machine, asks sudo itself; prints what is
 * wrong and exits 1 if anything is.
 */
const NOTEBOOK_USER_PY = String.raw`import glob, os, re, subprocess, sys

root = sys.argv[1] if len(sys.argv) > 1 else ""
NAME, UID, GID = "NOTEBOOK_USER", NOTEBOOK_UID, NOTEBOOK_GID
# membership in any of these is root on the machine, sudo or not
ROOT_GROUPS = {"root", "sudo", "admin", "wheel", "docker", "lxd"}


def rows(path):
    try:
        with open(root + path) as f:
            return [l.rstrip("\n").split(":") for l in f if l.strip() and not l.startswith("#")]
    except FileNotFoundError:
        return []


def sudoers_lines(path):
    try:
        text = open(path).read()
    except OSError:
        return []
    lines = []
    for line in text.replace("\\\n", " ").splitlines():
        # '#' starts a comment, except in '#include' and a uid such as '#2000'
        line = re.sub(r"#(?!\d|include).*", "", line).strip()
        if line and not line.startswith(("#include", "@include", "Defaults")):
            lines.append(line)
    return lines


def problem():
    users = [r for r in rows("/etc/passwd") if len(r) >= 4]
    me = next((r for r in users if r[0] == NAME), None)
    if me is None:
        return "the notebook account %s does not exist (making it with uid %d failed?)" % (NAME, UID)
    if (me[2], me[3]) != (str(UID), str(GID)):
        return "the notebook account %s has uid %s and gid %s, not %d and %d" % (NAME, me[2], me[3], UID, GID)
    twins = [r[0] for r in users if r[2] == str(UID) and r[0] != NAME]
    if twins:
        return "uid %d also belongs to %s" % (UID, ", ".join(twins))
    groups = [r for r in rows("/etc/group") if len(r) >= 4]
    mine = [r for r in groups if r[2] == me[3] or NAME in r[3].split(",")]
    bad = sorted({r[0] for r in mine} & ROOT_GROUPS)
    if bad:
        return "%s is in the group(s) %s, which can become root" % (NAME, ", ".join(bad))
    who = {NAME, "#%d" % UID, "ALL"} | {"%" + r[0] for r in mine} | {"%#" + r[2] for r in mine}
    for path in [root + "/etc/sudoers"] + sorted(glob.glob(root + "/etc/sudoers.d/*")):
        for line in sudoers_lines(path):
            alias = re.match(r"User_Alias\s+\w+\s*=\s*(.*)", line)
            if re.match(r"(Host|Runas|Cmnd)_Alias\b", line):
                continue
            names = alias.group(1) if alias else line.split(None, 1)[0]
            if who & {n.strip().lstrip("!") for n in re.split(r"[,:=]", names)}:
                return "%s names %s in a sudo rule: %s" % (path[len(root):], NAME, line[:200])
    if not root and os.path.exists("/usr/bin/sudo"):
        out = subprocess.run(["sudo", "-n", "-l", "-U", NAME], capture_output=True, text=True).stdout
        if "may run the following" in out:
            return "sudo lets %s run commands: %s" % (NAME, " ".join(out.split())[:200])
    return None


why = problem()
if why:
    print(why)
    sys.exit(1)
`
  .replace('NOTEBOOK_USER', NOTEBOOK_USER)
  .replace('NOTEBOOK_UID', String(NOTEBOOK_UID))
  .replace('NOTEBOOK_GID', String(NOTEBOOK_GID));

/**
 * check.sh: the checks whose failure a user would otherwise meet as a server that never works:
 * the notebook's account cannot become root, the hub's API answers from the machine at the URL
 * the server will use (a loopback URL names the machine itself), the GPU is visible inside the
 * container (or to the notebook's account, pip), and the image has the agent. The first failure
 * is reported with its code and exact words, and ends the script, which keeps the server's unit
 * from starting; when all pass, `ready` is reported.
 */
function checkScript(o: CloudInitOptions): string {
  const agent = agentArgv(o);
  const [agentBin = 'ngsci', ...agentArgs] = agent;
  const docker = o.image.kind === 'docker' ? o.image.ref : null;
  const where = docker ? `inside ${docker}` : 'for the notebook account';
  const lines = [
    '#!/bin/bash',
    '# Before the server starts: check the notebook account, the hub, the GPU and the agent; report.',
    'set -uo pipefail',
    '. "$(dirname "$0")/common.sh"',
    'fail() {',
    '  echo "ngsci boot check failed [$1]: $2" >&2',
    '  "$lib/boot-report.sh" failed "$1" "$2" || true',
    '  exit 1',
    '}',
    '',
    "# the notebook's account can never become root on this machine",
    'if ! why=$(python3 "$lib/notebook-user.py" "$root" 2>&1); then fail user_privileged "$why"; fi',
    '',
    '# the hub answers from here, at the URL the server will use',
    `api=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["env"].get("JUPYTERHUB_API_URL", "").rstrip("/"))' "$run/env.json")`,
    '[ -n "$api" ] || fail hub_unreachable "the server\'s environment has no JUPYTERHUB_API_URL"',
    'seen=""',
    'for attempt in 1 2 3 4 5 6; do',
    `  if seen=$(curl -sS --max-time 10 "$api/" 2>&1) && python3 -c 'import json, sys; sys.exit("version" not in json.loads(sys.stdin.read()))' <<<"$seen" 2>/dev/null; then break; fi`,
    '  if [ "$attempt" = 6 ]; then',
    '    hint=""',
    '    case "$api" in *://127.*|*://localhost*|*://\\[::1\\]*) hint=" (a loopback address: on this machine it is the machine itself, not the hub)" ;; esac',
    `    fail hub_unreachable "GET $api/ did not answer with JupyterHub's API from this machine$hint: $(printf '%s' "$seen" | head -c 300)"`,
    '  fi',
    '  sleep "$pause"',
    'done',
  ];
  if (o.gpu) {
    lines.push(
      '',
      '# a GPU size: the GPU is visible where the notebook runs',
      docker
        ? `gpus=$(docker run --rm --gpus all --network none --user ${NOTEBOOK_IDS} --entrypoint nvidia-smi ${shellWord(docker)} -L 2>&1)`
        : `gpus=$(${AS_NOTEBOOK} nvidia-smi -L 2>&1)`,
      `grep -q '^GPU [0-9]' <<<"$gpus" || fail gpu_unavailable "nvidia-smi -L ${where} listed no GPU: $(printf '%s' "$gpus" | head -c 300)"`,
    );
  }
  const agentHelp = [...agentArgs, '--help'].map(shellWord).join(' ');
  lines.push(
    '',
    '# the image has the agent (GPU use, spot notices, the data-access audit)',
    docker
      ? `out=$(docker run --rm --network none --entrypoint ${shellWord(agentBin)} ${shellWord(docker)} ${agentHelp} 2>&1)`
      : `out=$("$root/opt/ngsci/venv/bin/"${shellWord(agentBin)} ${agentHelp} 2>&1)`,
    `[ $? = 0 ] || fail agent_missing "${agent.join(' ')} --help failed ${docker ? where : 'in /opt/ngsci/venv'}: $(printf '%s' "$out" | head -c 300)"`,
    '',
    '"$lib/boot-report.sh" ready',
  );
  return lines.join('\n') + '\n';
}

/**
 * firewall.sh: rejects TCP from the notebook's account (its uid on the host) and, with docker,
 * from every container on a bridge network (the DOCKER-USER chain) to the clouds' metadata
 * services, which hand out the machine's credentials, service-account tokens and user-data. The
 * agent (root, host network) and the bootstrap keep them. Idempotent: a rule is added once.
 */
function firewallScript(o: CloudInitOptions): string {
  const docker = o.image.kind === 'docker';
  const reject = '-p tcp ! --dport 53 -j REJECT --reject-with tcp-reset';
  const owner = (bin: string, a: string) =>
    `add ${bin} OUTPUT -d ${a} -m owner --uid-owner ${NOTEBOOK_UID} ${reject}`;
  const bridged = (bin: string, a: string) => `add ${bin} DOCKER-USER -d ${a} ${reject}`;
  return [
    '#!/bin/bash',
    "# Keep the notebook's code away from the clouds' metadata services; root and the agent keep them.",
    'set -euo pipefail',
    'add() { local bin=$1 chain=$2; shift 2; "$bin" -w -C "$chain" "$@" 2>/dev/null || "$bin" -w -I "$chain" "$@"; }',
    ...METADATA_V4.flatMap((a) => [
      owner('iptables', a),
      ...(docker ? [bridged('iptables', a)] : []),
    ]),
    'if command -v ip6tables >/dev/null; then',
    ...METADATA_V6.map((a) => `  ${owner('ip6tables', a)}`),
    // docker makes its IPv6 chains only when IPv6 is on for it
    ...(docker
      ? [
          '  if ip6tables -w -n -L DOCKER-USER >/dev/null 2>&1; then',
          ...METADATA_V6.map((a) => `    ${bridged('ip6tables', a)}`),
          '  fi',
        ]
      : []),
    'fi',
    '',
  ].join('\n');
}

const WITH_ENV_PY = `# Run a command with the environment hub-service handed out at bootstrap ({"env": {...}}).
# For "docker run" the variable names are forwarded with -e NAME, so values never reach argv.
import json, os, sys
with open("${ENV_JSON}") as f:
    env = json.load(f)["env"]
argv = sys.argv[1:]
if len(argv) > 2 and argv[0].endswith("docker") and argv[1] == "run":
    argv = argv[:2] + [a for k in sorted(env) for a in ("-e", k)] + argv[2:]
os.execvpe(argv[0], argv, dict(os.environ, **env))
`;

function mountScript(o: CloudInitOptions): string {
  const home = `"$root"${HOME_MOUNT}`;
  const data = `"$root"${DATASET_MOUNT}`;
  const lines = [
    '#!/bin/bash',
    '# Mount the home disk (formatted on first use only, grown to fill the disk) and the data set, read-only.',
    'set -euo pipefail',
    // a scratch folder in tests (bootstrap-script.test.ts); systemd never sets it
    'root=$(printenv NGSCI_TEST_ROOT || true)',
    'first_device() {',
    '  for i in $(seq 1 300); do',
    '    for d in "$@"; do if [ -e "$d" ]; then readlink -f "$d"; return 0; fi; done',
    '    sleep 2',
    '  done',
    '  echo "none of $* appeared" >&2; return 1',
    '}',
    `home=$(first_device ${o.homeDevices.join(' ')})`,
    "# never format a disk that already has a file system: it is somebody's home",
    'if ! blkid "$home" >/dev/null 2>&1; then mkfs.ext4 -q -L ngsci-home -m 0 "$home"; fi',
    `mkdir -p ${home} ${data}`,
    `if ! mountpoint -q ${home}; then`,
    '  # the disk may have been grown since its file system was made (the size setting went up):',
    '  # grow the file system to fill it, before mounting, which needs a forced check first',
    `  fs=$(dumpe2fs -h "$home" 2>/dev/null | awk -F: '/^Block count/ { c = $2 } /^Block size/ { b = $2 } END { printf "%.0f", c * b }')`,
    '  if [ "$(blockdev --getsize64 "$home")" -gt "$fs" ]; then',
    '    if e2fsck -f -p "$home" >&2 || [ $? -lt 4 ]; then resize2fs "$home" >&2',
    '    else echo "warning: $home has file system errors; not growing it" >&2; fi',
    '  fi',
    `  mount -o defaults,noatime "$home" ${home}`,
    'fi',
    `# a home made when notebooks ran as uid ${PREVIOUS_NOTEBOOK_UID} is handed to the notebook account once`,
    `if [ "$(stat -c %u ${home})" = ${PREVIOUS_NOTEBOOK_UID} ]; then chown -R --from=${PREVIOUS_NOTEBOOK_UID} ${NOTEBOOK_UID} ${home}; fi`,
    `chown ${NOTEBOOK_IDS} ${home}`,
  ];
  const d = o.dataset;
  if (d?.kind === 'disk') {
    lines.push(
      `data=$(first_device ${d.devices.join(' ')})`,
      `mountpoint -q ${data} || mount -o ro,noload "$data" ${data} || mount -o ro "$data" ${data}`,
    );
  } else if (d?.kind === 'bucket') {
    if (d.cloud === 'aws') {
      lines.push(
        `mountpoint -q ${data} || mount-s3 --read-only --allow-other ${shellWord(d.ref)} ${data}`,
      );
    } else if (d.cloud === 'gcp') {
      lines.push(
        `mountpoint -q ${data} || gcsfuse -o ro,allow_other --implicit-dirs ${shellWord(d.ref)} ${data}`,
      );
    } else {
      const { account, container } = azureContainer(d.ref);
      lines.push(
        'install -d -m 0700 /var/cache/blobfuse2',
        `mountpoint -q ${data} || AZURE_STORAGE_ACCOUNT=${shellWord(account)} AZURE_STORAGE_ACCOUNT_CONTAINER=${shellWord(container)} AZURE_STORAGE_AUTH_TYPE=msi blobfuse2 mount ${data} --read-only --allow-other --tmp-path=/var/cache/blobfuse2`,
      );
    }
  }
  return lines.join('\n') + '\n';
}

function installScript(o: CloudInitOptions): string {
  const lines = [
    '#!/bin/bash',
    '# Put the single-user server (and what mounts the data set) on the machine.',
    'set -euo pipefail',
    'export DEBIAN_FRONTEND=noninteractive',
  ];
  if (o.dataset?.kind === 'bucket') {
    if (o.dataset.cloud === 'aws') {
      lines.push(
        'if ! command -v mount-s3 >/dev/null; then',
        '  curl -fsSL -o /tmp/mount-s3.deb https://s3.amazonaws.com/mountpoint-s3-release/latest/x86_64/mount-s3.deb',
        '  apt-get install -y /tmp/mount-s3.deb',
        'fi',
      );
    } else if (o.dataset.cloud === 'gcp') {
      lines.push(
        'if ! command -v gcsfuse >/dev/null; then',
        '  curl -fsSL https://packages.cloud.google.com/apt/doc/apt-key.gpg | gpg --dearmor -o /usr/share/keyrings/cloud.google.gpg',
        '  echo "deb [signed-by=/usr/share/keyrings/cloud.google.gpg] https://packages.cloud.google.com/apt gcsfuse-$(lsb_release -cs) main" > /etc/apt/sources.list.d/gcsfuse.list',
        '  apt-get update && apt-get install -y gcsfuse',
        'fi',
      );
    } else {
      lines.push(
        'if ! command -v blobfuse2 >/dev/null; then',
        '  curl -fsSL -o /tmp/ms.deb "https://packages.microsoft.com/config/ubuntu/$(lsb_release -rs)/packages-microsoft-prod.deb"',
        '  dpkg -i /tmp/ms.deb && apt-get update && apt-get install -y blobfuse2 fuse3',
        'fi',
      );
    }
  }
  if (o.image.kind === 'docker') {
    lines.push('command -v docker >/dev/null || apt-get install -y docker.io');
    if (o.gpu) {
      lines.push(
        'if ! command -v nvidia-ctk >/dev/null; then',
        '  curl -fsSL https://nvidia.github.io/libnvidia-container/gpgkey | gpg --dearmor -o /usr/share/keyrings/nvidia-container-toolkit.gpg',
        '  curl -fsSL https://nvidia.github.io/libnvidia-container/stable/deb/nvidia-container-toolkit.list | sed "s#deb https://#deb [signed-by=/usr/share/keyrings/nvidia-container-toolkit.gpg] https://#" > /etc/apt/sources.list.d/nvidia-container-toolkit.list',
        '  apt-get update && apt-get install -y nvidia-container-toolkit',
        'fi',
        'nvidia-ctk runtime configure --runtime=docker && systemctl restart docker',
      );
    }
    lines.push(`docker pull ${shellWord(o.image.ref)}`);
  } else {
    lines.push(
      'apt-get install -y python3-venv',
      'python3 -m venv /opt/ngsci/venv',
      `/opt/ngsci/venv/bin/pip install --no-cache-dir ${o.image.spec.split(/\s+/).map(shellWord).join(' ')}`,
    );
  }
  return lines.join('\n') + '\n';
}

/** `/subscriptions/…/storageAccounts/<account>/blobServices/default/containers/<container>` */
export function azureContainer(ref: string): { account: string; container: string } {
  const m = /\/storageAccounts\/([^/]+)\/blobServices\/default\/containers\/([^/]+)$/i.exec(ref);
  if (!m) throw new Error('an Azure bucket data set is the container resource id');
  return { account: m[1] as string, container: m[2] as string };
}

function shellWord(s: string): string {
  if (/^[A-Za-z0-9_./:@=+,-]+$/.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
