/**
 * Offline data preparation on AWS: `freetumor synthesize-dataset` as a Batch array job on CPU spot
 * instances that scale to zero. Each child reads AWS_BATCH_JOB_ARRAY_INDEX / _SIZE as its shard,
 * skips variants that already have a marker (a spot reclaim or retry loses at most the variant in
 * flight) and tries the merge when it is done; the last shard to finish writes dataset.json. It is a
 * separate job (submitted by an operator, or on its own schedule when `synthesisSchedule` is set),
 * not a step of the GPU training job: a GPU instance would otherwise idle while CPUs synthesize.
 * The training job reads the result through an `s3://` data set in the data manifest.
 */
import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import type { SynthesisConfig } from './config.ts';
import {
  allow,
  policyDocument,
  type TrainerStorage,
  type TrainingResources,
  trainerContainerProperties,
} from './training.ts';

export interface SynthesisResources {
  computeEnvironment: aws.batch.ComputeEnvironment;
  jobQueue: aws.batch.JobQueue;
  jobDefinition: aws.batch.JobDefinition;
  schedule?: aws.scheduler.Schedule;
  schedulerPolicy?: aws.iam.RolePolicy;
}

export function createSynthesis(
  cfg: SynthesisConfig,
  training: TrainingResources,
  storage: TrainerStorage,
  subnetIds: string[],
  securityGroupIds: string[],
  stack: string,
  imageTag: string,
): SynthesisResources {
  const name = `freetumor-${stack}`;
  const computeEnvironment = new aws.batch.ComputeEnvironment('cpu', {
    name: `${name}-cpu`,
    type: 'MANAGED',
    state: 'ENABLED',
    computeResources: {
      type: 'SPOT',
      allocationStrategy: 'SPOT_PRICE_CAPACITY_OPTIMIZED',
      // Zero instances between runs.
      minVcpus: 0,
      maxVcpus: cfg.maxVcpus,
      instanceTypes: cfg.instanceTypes,
      subnets: subnetIds,
      securityGroupIds,
      instanceRole: training.instanceProfile.arn,
      ec2Configurations: [{ imageType: 'ECS_AL2023' }],
      launchTemplate: {
        launchTemplateId: training.hostLaunchTemplate.id,
        version: training.hostLaunchTemplate.latestVersion.apply(String),
      },
      tags: { project: 'freetumor', stack, role: 'synthesis' },
    },
  });

  const jobQueue = new aws.batch.JobQueue('synthesis', {
    name: `${name}-synthesis`,
    state: 'ENABLED',
    priority: 1,
    computeEnvironmentOrders: [{ order: 1, computeEnvironment: computeEnvironment.arn }],
  });

  const jobDefinition = new aws.batch.JobDefinition('synthesis', {
    name: `${name}-synthesis`,
    type: 'container',
    platformCapabilities: ['EC2'],
    propagateTags: true,
    // Defaults of the Ref:: placeholders; SubmitJob's `parameters` override them.
    parameters: { data: cfg.dataUri, out: cfg.outUri, variants: String(cfg.variants), type: cfg.tumorType },
    containerProperties: trainerContainerProperties({
      image: pulumi.interpolate`${training.repository.repositoryUrl}:${imageTag}`,
      command: [
        'synthesize-dataset',
        '--data',
        'Ref::data',
        '--out',
        'Ref::out',
        '--variants',
        'Ref::variants',
        '--type',
        'Ref::type',
        '--json',
      ],
      executionRoleArn: training.executionRole.arn,
      resourceRequirements: [
        { type: 'VCPU', value: String(cfg.jobVcpus) },
        { type: 'MEMORY', value: String(cfg.jobMemoryMiB) },
      ],
      secretArn: training.r2Secret.arn,
      logGroup: training.logGroup.name,
      storage,
    }),
    retryStrategy: {
      attempts: cfg.jobAttempts,
      evaluateOnExits: [
        // A reclaimed spot instance: the retry skips every variant with a marker.
        { onStatusReason: 'Host EC2*', action: 'RETRY' },
        { onReason: 'CannotPullContainerError*', action: 'RETRY' },
        { onReason: '*', action: 'EXIT' },
      ],
    },
    timeout: { attemptDurationSeconds: cfg.jobTimeoutSeconds },
  });

  const out: SynthesisResources = { computeEnvironment, jobQueue, jobDefinition };
  if (cfg.schedule) {
    const submit = [jobQueue.arn, jobDefinition.arnPrefix, pulumi.interpolate`${jobDefinition.arnPrefix}:*`];
    out.schedulerPolicy = new aws.iam.RolePolicy('scheduler-submit-synthesis', {
      role: training.schedulerRole.id,
      policy: policyDocument(allow(['batch:SubmitJob'], submit)),
    });
    out.schedule = new aws.scheduler.Schedule('synthesis', {
      name: `${name}-synthesis`,
      description: 'Scheduled FreeTumor data preparation (synthesize-dataset array job)',
      scheduleExpression: cfg.schedule,
      scheduleExpressionTimezone: cfg.scheduleTimezone,
      flexibleTimeWindow: { mode: 'OFF' },
      state: 'ENABLED',
      target: {
        arn: 'arn:aws:scheduler:::aws-sdk:batch:submitJob',
        roleArn: training.schedulerRole.arn,
        input: pulumi.jsonStringify({
          JobName: `${name}-synthesis`,
          JobQueue: jobQueue.arn,
          JobDefinition: jobDefinition.arnPrefix,
          ArrayProperties: { Size: cfg.shards },
        }),
        retryPolicy: { maximumRetryAttempts: 3, maximumEventAgeInSeconds: 3600 },
      },
    });
  }
  return out;
}
