/**
 * The trainer image's Dockerfile: linted with dockerfile-utils (what can run without a Docker
 * daemon) and checked against the conventions the deployment relies on: a CUDA base that matches
 * tfjs-node-gpu's libtensorflow, Node 22, a non-root user, an exec-form entrypoint running the job.
 */
import { existsSync, readFileSync } from 'node:fs';
import { DockerfileParser, type JSONInstruction } from 'dockerfile-ast';
import { validate } from 'dockerfile-utils';
import { describe, expect, it } from 'vitest';

const ROOT = new URL('../', import.meta.url);
const DOCKERFILE = readFileSync(new URL('trainer/Dockerfile', ROOT), 'utf8');
const TFJS_VERSION: string = JSON.parse(
  readFileSync(new URL('node_modules/@tensorflow/tfjs-core/package.json', ROOT), 'utf8'),
).version;

/** libtensorflow that each tfjs-node(-gpu) release links -> the CUDA/cuDNN it was built for. */
const LIBTENSORFLOW_BY_TFJS: Record<string, string> = { '4.22': '2.9.1' };
const CUDA_BY_LIBTENSORFLOW: Record<string, { cuda: string; cudnn: string }> = {
  '2.9.1': { cuda: '11.2', cudnn: '8' },
};

/** The conventions as a function, so that the negative cases below run through the same code. */
function conventionViolations(text: string): string[] {
  const problems: string[] = [];
  const df = DockerfileParser.parse(text);
  const froms = df.getFROMs();
  const final = froms[froms.length - 1];
  if (!final) return ['no FROM'];
  const args = Object.fromEntries(
    df.getInitialARGs().map((a) => [a.getProperty()?.getName() ?? '', a.getProperty()?.getValue() ?? '']),
  );
  const tfjsNodeGpu = args.TFJS_NODE_GPU_VERSION ?? '';
  const libtf = LIBTENSORFLOW_BY_TFJS[tfjsNodeGpu.split('.').slice(0, 2).join('.')];
  const cuda = libtf ? CUDA_BY_LIBTENSORFLOW[libtf] : undefined;
  if (!cuda) problems.push(`no known CUDA for tfjs-node-gpu ${tfjsNodeGpu}`);
  const tag = final.getImageTag() ?? '';
  if (
    final.getImageName() !== 'nvidia/cuda' ||
    !cuda ||
    !tag.startsWith(`${cuda.cuda}.`) ||
    !tag.includes(`cudnn${cuda.cudnn}`)
  ) {
    problems.push(
      `final stage base ${final.getImage()} is not nvidia/cuda with CUDA ${cuda?.cuda} and cuDNN ${cuda?.cudnn}`,
    );
  }
  if (!froms.some((f) => f.getImageName() === 'node' && /^22-/.test(f.getImageTag() ?? ''))) {
    problems.push('Node 22 is not taken from the official node:22 image');
  }
  const finalLine = final.getRange().start.line;
  const inFinal = df.getInstructions().filter((i) => i.getRange().start.line > finalLine);
  const lines = text.split('\n');
  const copiesNode = inFinal.some(
    (i) =>
      i.getKeyword() === 'COPY' &&
      /--from=node\s+\/usr\/local\/bin\/node\b/.test(lines[i.getRange().start.line]),
  );
  if (!copiesNode) problems.push('the final stage does not copy the node binary from the node stage');
  const users = inFinal.filter((i) => i.getKeyword() === 'USER');
  const user = users[users.length - 1]?.getArgumentsContent()?.split(':')[0];
  if (!user || user === 'root' || user === '0') problems.push(`final USER is ${user ?? 'unset'} (root)`);
  const entrypoints = df.getENTRYPOINTs();
  const entry = entrypoints[entrypoints.length - 1] as JSONInstruction | undefined;
  const json = entry?.getJSONStrings().map((s) => s.getJSONValue()) ?? [];
  if (json.length === 0) problems.push('ENTRYPOINT is not in exec (JSON) form');
  else if (JSON.stringify(json) !== JSON.stringify(['node', 'bin/freetumor.js'])) {
    problems.push(`ENTRYPOINT runs ${JSON.stringify(json)}, not the freetumor CLI`);
  }
  const cmds = df.getCMDs();
  const cmd = (cmds[cmds.length - 1] as JSONInstruction | undefined)
    ?.getJSONStrings()
    .map((s) => s.getJSONValue());
  if (JSON.stringify(cmd) !== JSON.stringify(['job', '--json'])) {
    problems.push(`the default CMD is ${JSON.stringify(cmd)}, not the scheduled job`);
  }
  const code = lines.filter((l) => !l.trimStart().startsWith('#')).join('\n');
  if (/--ignore-scripts/.test(code))
    problems.push('--ignore-scripts would skip tfjs-node-gpu’s libtensorflow download');
  if (!/allowScripts\.@tensorflow\/tfjs-node-gpu=true/.test(code))
    problems.push('tfjs-node-gpu install script not allowed');
  if (!/npm ci\b/.test(code)) problems.push('dependencies not installed from the lock file (npm ci)');
  return problems;
}

describe('trainer/Dockerfile', () => {
  it('lints clean with dockerfile-utils', () => {
    expect(validate(DOCKERFILE)).toEqual([]);
  });

  it('follows the image conventions', () => {
    expect(conventionViolations(DOCKERFILE)).toEqual([]);
  });

  it('installs the GPU binding of the same tfjs release the code is tested with', () => {
    expect(DOCKERFILE).toContain(`ARG TFJS_NODE_GPU_VERSION=${TFJS_VERSION}`);
  });

  it('copies only paths that exist in the repository', () => {
    for (const path of ['package.json', 'package-lock.json', 'bin/freetumor.js', 'shared', 'trainer']) {
      expect(existsSync(new URL(path, ROOT)), path).toBe(true);
    }
  });

  it.each([
    [
      'a shell-form entrypoint',
      (t: string) => t.replace(/ENTRYPOINT \[.*\]/, 'ENTRYPOINT node bin/freetumor.js'),
      'exec',
    ],
    ['running as root', (t: string) => t.replace('USER 10001:10001', 'USER root'), 'root'],
    [
      'a CUDA 12 base',
      (t: string) =>
        t
          .replace(/runtime-ubuntu20\.04 AS runtime/, 'x AS runtime')
          .replace('nvidia/cuda:11.2.2-cudnn8-x', 'nvidia/cuda:12.2.0-cudnn8-runtime-ubuntu22.04'),
      'CUDA 11.2',
    ],
    [
      'skipped install scripts',
      (t: string) => t.replace('npm ci --omit=dev', 'npm ci --omit=dev --ignore-scripts'),
      'ignore-scripts',
    ],
  ])('catches %s', (_what, mutate, message) => {
    const bad = mutate(DOCKERFILE);
    expect(bad).not.toBe(DOCKERFILE);
    expect(conventionViolations(bad).join('\n')).toContain(message);
  });

  it('the linter itself flags a malformed instruction', () => {
    const diagnostics = validate(DOCKERFILE.replace('COPY bin ./bin', 'COPY bin'));
    expect(diagnostics.length).toBeGreaterThan(0);
  });
});
