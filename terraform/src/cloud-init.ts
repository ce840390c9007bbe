/**
 * The user-data every ngsci machine boots with, the same on all clouds: install docker (or a Python
 * venv), mount the home disk read-write and the data set read-only, then systemd units that
 *   1. trade the single-use bootstrap token, with the machine's cloud identity proof from its
 *      metadata service, for the server's environment and the agent's credential
 *      (`POST <serviceUrl>/api/v1/bootstrap`, `Authorization: Bearer <token>`), over https only
 *      unless the development setting allowed http; retried while the service answers 503/5xx,
 *   2. start `jupyterhub-singleuser` with that environment, as the unprivileged uid 1000,
 *   3. start `ngsci agent` beside it as root, its credential in /etc/ngsci/agent.env (0600 root),
 *      restarted whenever it ends: the notebook's user can neither read its credential nor stop it.
 * The environment (which holds the hub API token) only ever lives in /run (tmpfs, root only) and
 * never holds the agent's credential; the user-data carries nothing but the bootstrap token,
 * which is useless once spent.
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
    ci.user({
      name: 'jovyan',
      uid: '1000',
      groups: ['users'],
      shell: '/bin/bash',
      lock_passwd: true,
      no_create_home: true,
    });
    if (o.sshAuthorizedKeys?.length) ci.authorizedKeys(o.sshAuthorizedKeys);
    ci.install('curl', 'python3');

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
    ci.writeFile('/usr/local/lib/ngsci/bootstrap.sh', BOOTSTRAP_SH, '0700');
    ci.writeFile('/usr/local/lib/ngsci/bootstrap-json.py', BOOTSTRAP_JSON_PY, '0700');
    ci.writeFile('/usr/local/lib/ngsci/with-env.py', WITH_ENV_PY, '0700');
    ci.writeFile('/usr/local/lib/ngsci/mount.sh', mountScript(o), '0700');
    ci.writeFile('/usr/local/lib/ngsci/install.sh', installScript(o), '0700');

    ci.writeFile(
      '/etc/systemd/system/ngsci-mounts.service',
      unit({
        description: 'ngsci: mount the home disk and the read-only data set',
        after: 'network-online.target',
        wants: 'network-online.target',
        type: 'oneshot',
        exec: '/usr/local/lib/ngsci/mount.sh',
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
        exec: '/usr/local/lib/ngsci/bootstrap.sh',
        remain: true,
      }),
    );
    const [singleuser, agent] = serviceCommands(o);
    ci.writeFile(
      '/etc/systemd/system/ngsci-singleuser.service',
      unit({
        description: 'ngsci: jupyterhub-singleuser',
        after: 'ngsci-bootstrap.service',
        requires: 'ngsci-bootstrap.service',
        type: 'simple',
        exec: `/usr/bin/python3 /usr/local/lib/ngsci/with-env.py ${singleuser}`,
        restart: 'on-failure',
      }),
    );
    ci.writeFile(
      '/etc/systemd/system/ngsci-agent.service',
      unit({
        description: 'ngsci agent: GPU utilisation, data-access audit, spot warnings',
        after: 'ngsci-bootstrap.service ngsci-singleuser.service',
        requires: 'ngsci-bootstrap.service',
        type: 'simple',
        // root, with its own credential: the notebook's user (uid 1000) can't read it or kill it
        user: 'root',
        environmentFile: AGENT_ENV,
        exec: `/usr/bin/python3 /usr/local/lib/ngsci/with-env.py ${agent}`,
        restart: 'always',
      }),
    );

    ci.runcmd('/usr/local/lib/ngsci/install.sh');
    ci.runcmd('systemctl', 'daemon-reload');
    ci.runcmd('systemctl', 'enable', '--now', 'ngsci-mounts.service', 'ngsci-bootstrap.service');
    ci.runcmd('systemctl', 'enable', '--now', 'ngsci-singleuser.service', 'ngsci-agent.service');
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
  type: 'oneshot' | 'simple';
  exec: string;
  remain?: boolean;
  restart?: string;
  user?: string;
  environmentFile?: string;
}

function unit(u: UnitSpec): string {
  return [
    '[Unit]',
    `Description=${u.description}`,
    `After=${u.after}`,
    ...(u.wants ? [`Wants=${u.wants}`] : []),
    ...(u.requires ? [`Requires=${u.requires}`] : []),
    '',
    '[Service]',
    `Type=${u.type}`,
    ...(u.user ? [`User=${u.user}`] : []),
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

function serviceCommands(o: CloudInitOptions): [string, string] {
  const agent = o.agentCommand ?? ['ngsci', 'agent'];
  const port = String(o.singleuserPort);
  const singleuserArgs = ['jupyterhub-singleuser', '--ip=0.0.0.0', `--port=${port}`];
  if (o.image.kind === 'docker') {
    const gpus = o.gpu ? ' --gpus all' : '';
    const common = `--rm${gpus} --user 1000:100 -v ${HOME_MOUNT}:${HOME_MOUNT} -v ${DATASET_MOUNT}:${DATASET_MOUNT}:ro`;
    const dataset = `-v ${DATASET_MOUNT}:${DATASET_MOUNT}:ro`;
    // the notebook: bridge network (with IMDSv2 and a hop limit of 1 it can't read instance
    // metadata, so it can't fetch an identity proof) as uid 1000. The agent: root in its own
    // container with its credential from the root-only file, on the host network for the spot
    // notices in the metadata service and the server's kernels on loopback; no home mount, so
    // nothing the user wrote is on its path
    return [
      `/usr/bin/docker run --name ngsci-singleuser ${common} -p ${port}:${port} ${o.image.ref} ${singleuserArgs.join(' ')}`,
      `/usr/bin/docker run --name ngsci-agent --rm${gpus} --user 0:0 --network host --env-file ${AGENT_ENV} ${dataset} ${o.image.ref} ${agent.join(' ')}`,
    ];
  }
  return [
    `/usr/bin/setpriv --reuid=1000 --regid=100 --init-groups /opt/ngsci/venv/bin/${singleuserArgs.join(' ')}`,
    // root: systemd's User=root and EnvironmentFile give it the credential; no setpriv
    `/opt/ngsci/venv/bin/${agent.join(' ')}`,
  ];
}

/**
 * bootstrap.sh: fetch this machine's identity proof from the metadata service, trade it with the
 * bootstrap token for the server's environment and the agent's credential, and keep them apart:
 * the environment in /run/ngsci/env.json, the credential in /etc/ngsci/agent.env (0600 root).
 * Transient failures (no network yet, 5xx, and the 503 that means terraform has not reported the
 * machine yet) are retried, honouring Retry-After; a refusal (4xx) is final. NGSCI_TEST_ROOT and
 * NGSCI_TEST_METADATA_URL exist only so a test can run the script against a fake metadata service
 * in a scratch folder; systemd never sets them.
 */
const BOOTSTRAP_SCRIPT = String.raw`#!/bin/bash
# Prove who this machine is, trade the single-use bootstrap token, once per boot.
set -euo pipefail
umask 077
root=$(printenv NGSCI_TEST_ROOT || true)
md=$(printenv NGSCI_TEST_METADATA_URL || echo http://169.254.169.254)
etc="$root/etc/ngsci"
run="$root/run/ngsci"
lib="$root/usr/local/lib/ngsci"
set -a
. "$etc/bootstrap.env"
set +a
install -d -m 0700 "$run"
if [ -s "$run/env.json" ] && [ -s "$etc/agent.env" ]; then exit 0; fi
if [ -z "$NGSCI_BOOTSTRAP_TOKEN" ]; then echo "bootstrap token already spent" >&2; exit 1; fi
# the answer holds the server's hub token and the agent's credential: https only
case "$NGSCI_SERVICE_URL" in
  https://*) proto='=https' ;;
  http://*)
    if [ "$NGSCI_ALLOW_HTTP" != 1 ]; then
      echo "refusing to fetch secrets over plain http from $NGSCI_SERVICE_URL" >&2; exit 1
    fi
    echo "warning: fetching secrets over plain http (development setting)" >&2
    proto='=http,https' ;;
  *) echo "not an http(s) service URL: $NGSCI_SERVICE_URL" >&2; exit 1 ;;
esac
work="$run/bootstrap"
install -d -m 0700 "$work"
trap 'rm -rf "$work"' EXIT

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
      -w '%''{http_code}' -X POST -H "Authorization: Bearer $NGSCI_BOOTSTRAP_TOKEN" \
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

const BOOTSTRAP_SH = BOOTSTRAP_SCRIPT;

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
  const lines = [
    '#!/bin/bash',
    '# Mount the home disk (formatted on first use only) and the data set, read-only.',
    'set -euo pipefail',
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
    `mkdir -p ${HOME_MOUNT} ${DATASET_MOUNT}`,
    `mountpoint -q ${HOME_MOUNT} || mount -o defaults,noatime "$home" ${HOME_MOUNT}`,
    `chown 1000:100 ${HOME_MOUNT}`,
  ];
  const d = o.dataset;
  if (d?.kind === 'disk') {
    lines.push(
      `data=$(first_device ${d.devices.join(' ')})`,
      `mountpoint -q ${DATASET_MOUNT} || mount -o ro,noload "$data" ${DATASET_MOUNT} || mount -o ro "$data" ${DATASET_MOUNT}`,
    );
  } else if (d?.kind === 'bucket') {
    if (d.cloud === 'aws') {
      lines.push(
        `mountpoint -q ${DATASET_MOUNT} || mount-s3 --read-only --allow-other ${shellWord(d.ref)} ${DATASET_MOUNT}`,
      );
    } else if (d.cloud === 'gcp') {
      lines.push(
        `mountpoint -q ${DATASET_MOUNT} || gcsfuse -o ro,allow_other --implicit-dirs ${shellWord(d.ref)} ${DATASET_MOUNT}`,
      );
    } else {
      const { account, container } = azureContainer(d.ref);
      lines.push(
        'install -d -m 0700 /var/cache/blobfuse2',
        `mountpoint -q ${DATASET_MOUNT} || AZURE_STORAGE_ACCOUNT=${shellWord(account)} AZURE_STORAGE_ACCOUNT_CONTAINER=${shellWord(container)} AZURE_STORAGE_AUTH_TYPE=msi blobfuse2 mount ${DATASET_MOUNT} --read-only --allow-other --tmp-path=/var/cache/blobfuse2`,
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
