/**
 * The whole stack, built from a checked configuration. Kept apart from index.ts so that tests can
 * build it under Pulumi mocks and hold on to every resource.
 */
import * as pulumi from '@pulumi/pulumi';
import { createEdge, type EdgeResources } from './cloudflare.ts';
import type { StackConfig } from './config.ts';
import { createSynthesis, type SynthesisResources } from './synthesis.ts';
import { createTraining, type TrainingResources } from './training.ts';

export interface Stack {
  edge: EdgeResources;
  training: TrainingResources;
  synthesis: SynthesisResources;
}

/** The S3 API endpoint of an account's R2 (what the trainer's S3 client talks to). */
export function r2Endpoint(accountId: string): string {
  return `https://${accountId}.r2.cloudflarestorage.com`;
}

export function createStack(cfg: StackConfig): Stack {
  const storage = {
    endpoint: r2Endpoint(cfg.cloudflare.accountId),
    bucket: cfg.cloudflare.bucketName,
    accessKeyId: cfg.cloudflare.r2AccessKeyId,
    secretAccessKey: cfg.cloudflare.r2SecretAccessKey,
  };
  const training = createTraining(cfg.training, storage, cfg.stack);
  const synthesis = createSynthesis(
    cfg.synthesis,
    training,
    storage,
    cfg.training.subnetIds,
    cfg.training.securityGroupIds,
    cfg.stack,
    cfg.training.imageTag,
  );
  const edge = createEdge(cfg.cloudflare, {
    accessKeyId: training.retrainKey.id,
    secretAccessKey: training.retrainKey.secret,
    region: cfg.training.awsRegion,
    jobQueue: training.jobQueue.name,
    jobDefinition: training.jobDefinition.name,
  });
  return { edge, training, synthesis };
}

/** The stack outputs an operator needs (no secrets among them). */
export function stackOutputs(stack: Stack) {
  return {
    bucket: stack.edge.bucket.name,
    workerName: stack.edge.worker.scriptName,
    url: stack.edge.customDomain
      ? pulumi.interpolate`https://${stack.edge.customDomain.hostname}`
      : pulumi.output('workers.dev (see the Cloudflare dashboard for the account subdomain)'),
    trainerRepository: stack.training.repository.repositoryUrl,
    jobQueue: stack.training.jobQueue.name,
    jobDefinition: stack.training.jobDefinition.name,
    schedule: stack.training.schedule.scheduleExpression,
    synthesisJobQueue: stack.synthesis.jobQueue.name,
    synthesisJobDefinition: stack.synthesis.jobDefinition.name,
  };
}
