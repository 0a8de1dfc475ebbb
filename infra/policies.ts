/**
 * Policy as code, written as plain functions over the resource inputs a deployment would send, so
 * that they run in unit tests on Pulumi mock-captured inputs (the Pulumi CLI and @pulumi/policy's
 * analyzer cannot run offline). A networked pipeline can wrap the same functions in a PolicyPack.
 */

/** One resource as the engine sees it: its type token, logical name and inputs. */
export interface ResourceInputs {
  type: string;
  name: string;
  props: Record<string, unknown>;
  /** Dotted paths of inputs that were Pulumi secrets (e.g. `bindings.1.text`). */
  secretPaths: ReadonlySet<string>;
}

export interface Violation {
  policy: string;
  resource: string;
  message: string;
}

export interface Policy {
  name: string;
  description: string;
  /** Sees every resource, so that a policy can also check what must exist alongside a resource. */
  validate(resources: readonly ResourceInputs[], report: (resource: string, message: string) => void): void;
}

export const TYPES = {
  r2Bucket: 'cloudflare:index/r2Bucket:R2Bucket',
  r2ManagedDomain: 'cloudflare:index/r2ManagedDomain:R2ManagedDomain',
  r2Lifecycle: 'cloudflare:index/r2BucketLifecycle:R2BucketLifecycle',
  r2CustomDomain: 'cloudflare:index/r2CustomDomain:R2CustomDomain',
  workersScript: 'cloudflare:index/workersScript:WorkersScript',
  workersCron: 'cloudflare:index/workersCronTrigger:WorkersCronTrigger',
  computeEnvironment: 'aws:batch/computeEnvironment:ComputeEnvironment',
  jobDefinition: 'aws:batch/jobDefinition:JobDefinition',
  schedule: 'aws:scheduler/schedule:Schedule',
  rolePolicy: 'aws:iam/rolePolicy:RolePolicy',
  userPolicy: 'aws:iam/userPolicy:UserPolicy',
  policy: 'aws:iam/policy:Policy',
  rolePolicyAttachment: 'aws:iam/rolePolicyAttachment:RolePolicyAttachment',
} as const;

// --- The secret marker the Pulumi runtime puts around secret values in serialized inputs. ---
const SECRET_SIG = '4dabf18193072939515e22adb298388d';
const SECRET_VALUE = '1b47061264138c4ac30d75fd1eb44270';

/** Replaces the runtime's secret wrappers by their values and records where they were. */
export function unwrapSecrets(
  value: unknown,
  path = '',
  secrets = new Set<string>(),
): { value: unknown; secrets: Set<string> } {
  if (Array.isArray(value)) {
    return { value: value.map((v, i) => unwrapSecrets(v, join(path, String(i)), secrets).value), secrets };
  }
  if (value !== null && typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    if (obj[SECRET_SIG] === SECRET_VALUE) {
      secrets.add(path);
      return unwrapSecrets(obj.value, path, secrets);
    }
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(obj)) out[k] = unwrapSecrets(v, join(path, k), secrets).value;
    return { value: out, secrets };
  }
  return { value, secrets };
}

function join(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

/**
 * True when the runtime marked exactly this value secret. A secret inside an array marks the whole
 * array (e.g. all of `bindings`), which says nothing about one element, so ancestors do not count.
 */
function isSecretAt(r: ResourceInputs, path: string): boolean {
  return r.secretPaths.has(path);
}

/** Values shaped like credentials: AWS key ids, 40-char secret keys, long hex hashes/tokens. */
function looksLikeCredential(text: unknown): boolean {
  if (typeof text !== 'string') return false;
  return (
    /^(AKIA|ASIA)[A-Z0-9]{16}$/.test(text) ||
    /^[A-Za-z0-9/+]{40}$/.test(text) ||
    /^[0-9a-f]{32,}$/i.test(text)
  );
}

function ofType(resources: readonly ResourceInputs[], type: string): ResourceInputs[] {
  return resources.filter((r) => r.type === type);
}

function parseJson(text: unknown): unknown {
  if (typeof text !== 'string') return text;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

// --- Schedules ---

type FieldSpec = { min: number; max: number; names?: string[]; extras?: RegExp };
const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const DAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

function validField(field: string, spec: FieldSpec): boolean {
  if (field === '*') return true;
  if (spec.extras?.test(field)) return true;
  return field.split(',').every((part) => {
    const m = /^(\*|[0-9A-Z]+(?:-[0-9A-Z]+)?)(?:\/([0-9]+))?$/.exec(part);
    if (!m) return false;
    if (m[2] !== undefined && Number(m[2]) < 1) return false;
    if (m[1] === '*') return true;
    const bounds = m[1].split('-').map((v) => toNumber(v, spec));
    if (bounds.some((b) => b === undefined || b < spec.min || b > spec.max)) return false;
    return bounds.length === 1 || (bounds[0] as number) <= (bounds[1] as number);
  });
}

function toNumber(v: string, spec: FieldSpec): number | undefined {
  if (/^[0-9]+$/.test(v)) return Number(v);
  const i = spec.names?.indexOf(v) ?? -1;
  return i < 0 ? undefined : spec.min + i;
}

/** A Cloudflare Workers cron (5 fields: minute hour day-of-month month day-of-week). */
export function isValidWorkersCron(expr: string): boolean {
  const fields = expr.trim().toUpperCase().split(/\s+/);
  if (fields.length !== 5) return false;
  const specs: FieldSpec[] = [
    { min: 0, max: 59 },
    { min: 0, max: 23 },
    { min: 1, max: 31, extras: /^(L|[0-9]{1,2}W)$/ },
    { min: 1, max: 12, names: MONTHS },
    { min: 0, max: 7, names: DAYS, extras: /^([0-7]L|[0-7]#[1-5]|[A-Z]{3}#[1-5])$/ },
  ];
  return fields.every((f, i) => validField(f, specs[i]));
}

/**
 * An EventBridge Scheduler expression: `rate(n unit)`, `at(yyyy-mm-ddThh:mm:ss)` or `cron(...)` with
 * 6 fields (minutes hours day-of-month month day-of-week year) where exactly one of the two day fields is `?`.
 */
export function isValidScheduleExpression(expr: string): boolean {
  const rate = /^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$/.exec(expr);
  if (rate) {
    const n = Number(rate[1]);
    return n >= 1 && (n === 1) === !rate[2].endsWith('s');
  }
  if (/^at\(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\)$/.test(expr)) return true;
  const cron = /^cron\((.+)\)$/.exec(expr);
  if (!cron) return false;
  const fields = cron[1].trim().toUpperCase().split(/\s+/);
  if (fields.length !== 6) return false;
  const [minutes, hours, dom, month, dow, year] = fields;
  if ((dom === '?') === (dow === '?')) return false;
  return (
    validField(minutes, { min: 0, max: 59 }) &&
    validField(hours, { min: 0, max: 23 }) &&
    (dom === '?' || validField(dom, { min: 1, max: 31, extras: /^(L|[0-9]{1,2}W)$/ })) &&
    validField(month, { min: 1, max: 12, names: MONTHS }) &&
    (dow === '?' ||
      validField(dow, { min: 1, max: 7, names: DAYS, extras: /^([1-7]L|[1-7]#[1-5]|[A-Z]{3}#[1-5])$/ })) &&
    validField(year, { min: 1970, max: 2199 })
  );
}

// --- IAM ---

/** Actions AWS only authorizes on `"Resource": "*"` (no resource-level permissions). */
const RESOURCE_STAR_ALLOWED = new Set(['ecr:GetAuthorizationToken']);
/** AWS managed policies a role may carry (each scoped by AWS to one service's agent). */
const MANAGED_POLICIES_ALLOWED = new Set([
  'arn:aws:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role',
]);

type IamStatement = {
  Effect?: string;
  Action?: unknown;
  NotAction?: unknown;
  Resource?: unknown;
  NotResource?: unknown;
};

function asList(v: unknown): string[] {
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v]).map(String);
}

function checkStatement(s: IamStatement, report: (message: string) => void): void {
  if (s.Effect !== 'Allow') return;
  if (s.NotAction !== undefined || s.NotResource !== undefined) {
    report('NotAction/NotResource grant everything else; list what is allowed instead');
  }
  const actions = asList(s.Action);
  for (const a of actions) {
    if (a === '*' || a.endsWith(':*') || a.includes('*')) report(`action "${a}" is a wildcard`);
  }
  for (const res of asList(s.Resource)) {
    if (res === '*' && !actions.every((a) => RESOURCE_STAR_ALLOWED.has(a))) {
      report(`resource "*" for ${actions.join(', ')}: scope it to the ARNs used`);
    } else if (res !== '*' && /^arn:aws:[a-z0-9-]+:[^:]*:[^:]*:\*$/.test(res)) {
      report(`resource "${res}" covers every resource of the service`);
    }
  }
}

/** The synthesis side (CPU array job) is told apart by its compute environment tag and its command. */
function isSynthesisEnvironment(r: ResourceInputs): boolean {
  const cr = (r.props.computeResources ?? {}) as { tags?: Record<string, string> };
  return cr.tags?.role === 'synthesis';
}

function isSynthesisJob(r: ResourceInputs): boolean {
  const cp = parseJson(r.props.containerProperties) as { command?: string[] } | undefined;
  return cp?.command?.[0] === 'synthesize-dataset';
}

// --- The policies ---

export const policies: Policy[] = [
  {
    name: 'worker-secrets-are-secret-text',
    description: 'Credentials reach the Worker as secret_text bindings, never plain_text vars',
    validate(resources, report) {
      const credential = /(^|_)(KEY|SECRET|TOKEN|PASSWORD|CREDENTIALS?)(_|$)|HASHES$/i;
      for (const r of ofType(resources, TYPES.workersScript)) {
        const bindings = (r.props.bindings ?? []) as Array<Record<string, unknown>>;
        bindings.forEach((b, i) => {
          const secretValue = isSecretAt(r, `bindings.${i}.text`) || isSecretAt(r, `bindings.${i}`);
          const suspicious = credential.test(String(b.name)) || secretValue || looksLikeCredential(b.text);
          if (b.type !== 'secret_text' && b.type !== 'r2_bucket' && suspicious) {
            report(
              r.name,
              `binding ${String(b.name)} holds a credential but is ${String(b.type)}, not secret_text`,
            );
          }
        });
      }
    },
  },
  {
    name: 'training-requests-gpu',
    description: 'The training job asks for a GPU and runs on GPU instances with the ECS GPU AMI',
    validate(resources, report) {
      for (const r of ofType(resources, TYPES.jobDefinition).filter((j) => !isSynthesisJob(j))) {
        const cp = parseJson(r.props.containerProperties) as {
          resourceRequirements?: Array<{ type: string; value: string }>;
        };
        const gpu = cp?.resourceRequirements?.find((q) => q.type === 'GPU');
        if (!gpu || !(Number(gpu.value) >= 1))
          report(r.name, 'containerProperties.resourceRequirements has no GPU >= 1');
        const caps = asList(r.props.platformCapabilities);
        if (!caps.includes('EC2')) report(r.name, 'platformCapabilities must be EC2 (Fargate has no GPUs)');
      }
      for (const r of ofType(resources, TYPES.computeEnvironment).filter((c) => !isSynthesisEnvironment(c))) {
        const cr = (r.props.computeResources ?? {}) as Record<string, unknown>;
        const types = asList(cr.instanceTypes);
        const notGpu = types.filter((t) => !/^(g\d|p\d)[a-z0-9-]*\./.test(t));
        if (types.length === 0 || notGpu.length > 0) {
          report(
            r.name,
            `instanceTypes must all be GPU families (g*, p*): ${notGpu.join(', ') || 'none given'}`,
          );
        }
        const images = ((cr.ec2Configurations ?? []) as Array<{ imageType?: string }>).map(
          (c) => c.imageType,
        );
        if (!images.some((t) => t === 'ECS_AL2_NVIDIA' || t === 'ECS_AL2023_NVIDIA')) {
          report(
            r.name,
            'ec2Configurations.imageType must be an ECS GPU AMI (ECS_AL2023_NVIDIA or ECS_AL2_NVIDIA)',
          );
        }
      }
    },
  },
  {
    name: 'synthesis-on-cpu-spot',
    description:
      'The synthesize-dataset array job runs on CPU spot instances, asks for no GPU and reads its shard from Batch',
    validate(resources, report) {
      for (const r of ofType(resources, TYPES.computeEnvironment).filter(isSynthesisEnvironment)) {
        const cr = (r.props.computeResources ?? {}) as Record<string, unknown>;
        if (cr.type !== 'SPOT') report(r.name, `computeResources.type is ${String(cr.type)}, not SPOT`);
        const gpu = asList(cr.instanceTypes).filter((t) => /^(g\d|p\d)/.test(t));
        if (gpu.length > 0) report(r.name, `GPU instance types on the CPU side: ${gpu.join(', ')}`);
      }
      for (const r of ofType(resources, TYPES.jobDefinition).filter(isSynthesisJob)) {
        const cp = parseJson(r.props.containerProperties) as {
          resourceRequirements?: Array<{ type: string }>;
          command?: string[];
        };
        if (cp?.resourceRequirements?.some((q) => q.type === 'GPU'))
          report(r.name, 'the synthesis job asks for a GPU');
        if (cp?.command?.includes('--shard'))
          report(r.name, 'a fixed --shard would make every array child run the same shard');
      }
    },
  },
  {
    name: 'compute-scales-to-zero',
    description: 'GPU instances run only while a job does: minVcpus 0 and a bounded job',
    validate(resources, report) {
      for (const r of ofType(resources, TYPES.computeEnvironment)) {
        const cr = (r.props.computeResources ?? {}) as Record<string, unknown>;
        if ((cr.minVcpus ?? 0) !== 0) report(r.name, `minVcpus is ${String(cr.minVcpus)}, must be 0`);
        if (cr.desiredVcpus !== undefined && cr.desiredVcpus !== 0)
          report(r.name, 'desiredVcpus keeps instances running');
      }
      for (const r of ofType(resources, TYPES.jobDefinition)) {
        const t = (r.props.timeout ?? {}) as { attemptDurationSeconds?: number };
        if (!(Number(t.attemptDurationSeconds) > 0))
          report(r.name, 'timeout.attemptDurationSeconds is not set');
        const rs = (r.props.retryStrategy ?? {}) as { attempts?: number };
        if (!(Number(rs.attempts) >= 1 && Number(rs.attempts) <= 10))
          report(r.name, 'retryStrategy.attempts must be 1..10');
      }
    },
  },
  {
    name: 'buckets-private',
    description: 'R2 buckets have their r2.dev URL declared off and no public custom domain',
    validate(resources, report) {
      const managed = ofType(resources, TYPES.r2ManagedDomain);
      for (const d of managed) {
        if (d.props.enabled !== false) report(d.name, 'r2.dev public access is enabled');
      }
      for (const d of ofType(resources, TYPES.r2CustomDomain)) {
        report(d.name, 'a public custom domain exposes the bucket; serve objects through the Worker');
      }
      for (const b of ofType(resources, TYPES.r2Bucket)) {
        if (!managed.some((d) => d.props.bucketName === b.props.name)) {
          report(b.name, 'no R2ManagedDomain declares r2.dev access off for this bucket');
        }
      }
    },
  },
  {
    name: 'buckets-abort-incomplete-uploads',
    description: 'Every R2 bucket aborts multipart uploads abandoned by killed writers (lifecycle rule)',
    validate(resources, report) {
      const rules = ofType(resources, TYPES.r2Lifecycle);
      for (const b of ofType(resources, TYPES.r2Bucket)) {
        const mine = rules.filter((r) => r.props.bucketName === b.props.name);
        const ok = mine.some((r) =>
          ((r.props.rules ?? []) as Array<Record<string, unknown>>).some((rule) => {
            const cond = (rule.abortMultipartUploadsTransition as { condition?: { maxAge?: number } })
              ?.condition;
            const prefix = (rule.conditions as { prefix?: string } | undefined)?.prefix;
            return (
              rule.enabled === true &&
              prefix === '' &&
              Number(cond?.maxAge) > 0 &&
              Number(cond?.maxAge) <= 7 * 86_400
            );
          }),
        );
        if (!ok)
          report(b.name, 'no enabled lifecycle rule aborts incomplete multipart uploads within 7 days');
      }
    },
  },
  {
    name: 'schedules-valid',
    description: 'Scheduler expressions and Worker crons parse',
    validate(resources, report) {
      for (const r of ofType(resources, TYPES.schedule)) {
        const expr = String(r.props.scheduleExpression);
        if (!isValidScheduleExpression(expr))
          report(r.name, `scheduleExpression "${expr}" is not a valid cron()/rate()/at()`);
      }
      for (const r of ofType(resources, TYPES.workersCron)) {
        for (const s of (r.props.schedules ?? []) as Array<{ cron?: string }>) {
          if (!isValidWorkersCron(String(s.cron)))
            report(r.name, `cron "${String(s.cron)}" is not a valid 5-field cron`);
        }
      }
    },
  },
  {
    name: 'least-privilege-iam',
    description: 'No wildcard actions, resources scoped to the ARNs used, only allow-listed managed policies',
    validate(resources, report) {
      const docs = [TYPES.rolePolicy, TYPES.userPolicy, TYPES.policy].flatMap((t) => ofType(resources, t));
      for (const r of docs) {
        const doc = parseJson(r.props.policy) as { Statement?: IamStatement | IamStatement[] } | undefined;
        if (!doc?.Statement) {
          report(r.name, 'policy is not a JSON policy document');
          continue;
        }
        for (const s of Array.isArray(doc.Statement) ? doc.Statement : [doc.Statement]) {
          checkStatement(s, (m) => report(r.name, m));
        }
      }
      for (const r of ofType(resources, TYPES.rolePolicyAttachment)) {
        const arn = String(r.props.policyArn);
        if (!MANAGED_POLICIES_ALLOWED.has(arn))
          report(r.name, `managed policy ${arn} is not on the allow-list`);
      }
    },
  },
];

/** Runs every policy; an empty list means the stack passes. */
export function runPolicies(
  resources: readonly ResourceInputs[],
  selected: readonly Policy[] = policies,
): Violation[] {
  const violations: Violation[] = [];
  for (const p of selected) {
    p.validate(resources, (resource, message) => violations.push({ policy: p.name, resource, message }));
  }
  return violations;
}
