/**
 * The GPU training side on AWS: the trainer image repository, R2 credentials in Secrets Manager,
 * a Batch compute environment of GPU instances that scales to zero between runs, a job queue and
 * job definition, and the EventBridge Scheduler schedule that submits the job. Every role gets only
 * the actions it uses, on the resources it uses them on.
 */
import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import type { TrainingConfig } from './config.ts';

export interface TrainingResources {
  repository: aws.ecr.Repository;
  repositoryLifecycle: aws.ecr.LifecyclePolicy;
  r2Secret: aws.secretsmanager.Secret;
  r2SecretVersion: aws.secretsmanager.SecretVersion;
  logGroup: aws.cloudwatch.LogGroup;
  instanceRole: aws.iam.Role;
  instanceRoleEcs: aws.iam.RolePolicyAttachment;
  instanceProfile: aws.iam.InstanceProfile;
  executionRole: aws.iam.Role;
  executionPolicy: aws.iam.RolePolicy;
  hostLaunchTemplate: aws.ec2.LaunchTemplate;
  computeEnvironment: aws.batch.ComputeEnvironment;
  jobQueue: aws.batch.JobQueue;
  jobDefinition: aws.batch.JobDefinition;
  schedulerRole: aws.iam.Role;
  schedulerPolicy: aws.iam.RolePolicy;
  schedule: aws.scheduler.Schedule;
  /** The Worker's identity for "retrain now": may only submit this job to this queue. */
  retrainUser: aws.iam.User;
  retrainPolicy: aws.iam.UserPolicy;
  retrainKey: aws.iam.AccessKey;
}

/** Where the trainer reaches R2 and what it trains on (passed to the job as environment). */
export interface TrainerStorage {
  endpoint: pulumi.Input<string>;
  bucket: pulumi.Input<string>;
  accessKeyId: pulumi.Output<string>;
  secretAccessKey: pulumi.Output<string>;
}

type Statement = { Effect: 'Allow'; Action: string[]; Resource: pulumi.Input<string>[] };

export function allow(actions: string[], resources: pulumi.Input<string>[]): Statement {
  return { Effect: 'Allow', Action: actions, Resource: resources };
}

export function policyDocument(...statements: Statement[]): pulumi.Output<string> {
  return pulumi.jsonStringify({ Version: '2012-10-17', Statement: statements });
}

export function assumeRolePolicy(service: string, accountId?: string): string {
  return JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      {
        Effect: 'Allow',
        Principal: { Service: service },
        Action: 'sts:AssumeRole',
        // Confused-deputy guard: only this account's schedules may assume the role.
        ...(accountId ? { Condition: { StringEquals: { 'aws:SourceAccount': accountId } } } : {}),
      },
    ],
  });
}

/** Batch requires MIME multi-part user data in launch templates. */
export const ECS_AGENT_USER_DATA = [
  'MIME-Version: 1.0',
  'Content-Type: multipart/mixed; boundary="==FREETUMOR=="',
  '',
  '--==FREETUMOR==',
  'Content-Type: text/x-shellscript; charset="us-ascii"',
  '',
  '#!/bin/bash',
  'echo ECS_ENABLE_SPOT_INSTANCE_DRAINING=true >> /etc/ecs/ecs.config',
  'echo ECS_CONTAINER_STOP_TIMEOUT=110s >> /etc/ecs/ecs.config',
  '',
  '--==FREETUMOR==--',
  '',
].join('\n');

/** What every trainer-image job has in common: R2 settings and secrets, logs, the unprivileged user. */
export interface TrainerContainer {
  image: pulumi.Input<string>;
  /** Arguments of the image's ENTRYPOINT (`node bin/freetumor.js`). */
  command: pulumi.Input<string>[];
  executionRoleArn: pulumi.Input<string>;
  resourceRequirements: Array<{ type: 'GPU' | 'VCPU' | 'MEMORY'; value: string }>;
  /** Environment past the bucket's endpoint and name. */
  environment?: Array<{ name: string; value: pulumi.Input<string> }>;
  secretArn: pulumi.Input<string>;
  logGroup: pulumi.Input<string>;
  storage: TrainerStorage;
}

/** The Batch containerProperties of a trainer-image job (the training job and the synthesis array job). */
export function trainerContainerProperties(c: TrainerContainer): pulumi.Output<string> {
  return pulumi.jsonStringify({
    image: c.image,
    command: c.command,
    executionRoleArn: c.executionRoleArn,
    resourceRequirements: c.resourceRequirements,
    environment: [
      { name: 'FREETUMOR_S3_ENDPOINT', value: c.storage.endpoint },
      { name: 'FREETUMOR_BUCKET', value: c.storage.bucket },
      ...(c.environment ?? []),
    ],
    secrets: [
      { name: 'R2_ACCESS_KEY_ID', valueFrom: pulumi.interpolate`${c.secretArn}:accessKeyId::` },
      { name: 'R2_SECRET_ACCESS_KEY', valueFrom: pulumi.interpolate`${c.secretArn}:secretAccessKey::` },
    ],
    logConfiguration: { logDriver: 'awslogs', options: { 'awslogs-group': c.logGroup } },
    readonlyRootFilesystem: false,
    user: '10001',
  });
}

/** The container's view of the job: image, GPU and size, R2 access, where the data manifest is. */
function containerProperties(
  cfg: TrainingConfig,
  image: pulumi.Input<string>,
  executionRoleArn: pulumi.Input<string>,
  secretArn: pulumi.Input<string>,
  logGroup: pulumi.Input<string>,
  storage: TrainerStorage,
): pulumi.Output<string> {
  return trainerContainerProperties({
    image,
    command: ['job', '--json'],
    executionRoleArn,
    resourceRequirements: [
      { type: 'GPU', value: String(cfg.jobGpus) },
      { type: 'VCPU', value: String(cfg.jobVcpus) },
      { type: 'MEMORY', value: String(cfg.jobMemoryMiB) },
    ],
    environment: [
      { name: 'FREETUMOR_DATA_MANIFEST', value: cfg.dataManifestKey },
      { name: 'FREETUMOR_BACKEND', value: 'tensorflow' },
      { name: 'TF_FORCE_GPU_ALLOW_GROWTH', value: 'true' },
    ],
    secretArn,
    logGroup,
    storage,
  });
}

export function createTraining(
  cfg: TrainingConfig,
  storage: TrainerStorage,
  stack: string,
): TrainingResources {
  const name = `freetumor-${stack}`;

  const repository = new aws.ecr.Repository('trainer', {
    name: `${name}-trainer`,
    imageTagMutability: 'IMMUTABLE',
    imageScanningConfiguration: { scanOnPush: true },
    forceDelete: false,
  });
  const repositoryLifecycle = new aws.ecr.LifecyclePolicy('trainer-keep-recent', {
    repository: repository.name,
    policy: JSON.stringify({
      rules: [
        {
          rulePriority: 1,
          description: 'keep the 10 most recent trainer images',
          selection: { tagStatus: 'any', countType: 'imageCountMoreThan', countNumber: 10 },
          action: { type: 'expire' },
        },
      ],
    }),
  });

  const r2Secret = new aws.secretsmanager.Secret('r2-credentials', {
    name: `${name}/r2-credentials`,
    description: 'R2 S3 API token used by the trainer to read data and publish models',
  });
  const r2SecretVersion = new aws.secretsmanager.SecretVersion('r2-credentials', {
    secretId: r2Secret.id,
    secretString: pulumi.jsonStringify({
      accessKeyId: storage.accessKeyId,
      secretAccessKey: storage.secretAccessKey,
    }),
  });

  const logGroup = new aws.cloudwatch.LogGroup('trainer-logs', {
    name: `/aws/batch/${name}`,
    retentionInDays: cfg.logRetentionDays,
  });

  // The GPU hosts: the ECS agent's managed policy is what the ECS-optimized AMI needs, nothing more.
  const instanceRole = new aws.iam.Role('batch-instance', {
    assumeRolePolicy: assumeRolePolicy('ec2.amazonaws.com'),
  });
  const instanceRoleEcs = new aws.iam.RolePolicyAttachment('batch-instance-ecs', {
    role: instanceRole.name,
    policyArn: 'arn:aws:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role',
  });
  const instanceProfile = new aws.iam.InstanceProfile('batch-instance', { role: instanceRole.name });

  // The container start: pull the image, write logs, read the R2 secret.
  const executionRole = new aws.iam.Role('trainer-execution', {
    assumeRolePolicy: assumeRolePolicy('ecs-tasks.amazonaws.com'),
  });
  const executionPolicy = new aws.iam.RolePolicy('trainer-execution', {
    role: executionRole.id,
    policy: policyDocument(
      // GetAuthorizationToken has no resource-level permissions: AWS only accepts "*" for it.
      allow(['ecr:GetAuthorizationToken'], ['*']),
      allow(
        ['ecr:BatchCheckLayerAvailability', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchGetImage'],
        [repository.arn],
      ),
      allow(['logs:CreateLogStream', 'logs:PutLogEvents'], [pulumi.interpolate`${logGroup.arn}:*`]),
      allow(['secretsmanager:GetSecretValue'], [r2Secret.arn]),
    ),
  });

  // ECS agent settings on the GPU hosts: drain on the spot two-minute notice (the job gets SIGTERM,
  // stops at a step boundary and uploads its checkpoint) and allow it 110 s before SIGKILL.
  const hostLaunchTemplate = new aws.ec2.LaunchTemplate('gpu-hosts', {
    userData: Buffer.from(ECS_AGENT_USER_DATA).toString('base64'),
    metadataOptions: { httpTokens: 'required', httpEndpoint: 'enabled' },
  });

  const computeEnvironment = new aws.batch.ComputeEnvironment('gpu', {
    name: `${name}-gpu`,
    type: 'MANAGED',
    state: 'ENABLED',
    computeResources: {
      type: cfg.spot ? 'SPOT' : 'EC2',
      allocationStrategy: cfg.spot ? 'SPOT_PRICE_CAPACITY_OPTIMIZED' : 'BEST_FIT_PROGRESSIVE',
      // Zero instances between runs: the GPU bill stops when the queue is empty.
      minVcpus: 0,
      maxVcpus: cfg.maxVcpus,
      instanceTypes: cfg.instanceTypes,
      subnets: cfg.subnetIds,
      securityGroupIds: cfg.securityGroupIds,
      instanceRole: instanceProfile.arn,
      ec2Configurations: [{ imageType: cfg.imageType }],
      launchTemplate: {
        launchTemplateId: hostLaunchTemplate.id,
        version: hostLaunchTemplate.latestVersion.apply(String),
      },
      tags: { project: 'freetumor', stack },
    },
  });

  const jobQueue = new aws.batch.JobQueue('training', {
    name: `${name}-training`,
    state: 'ENABLED',
    priority: 1,
    computeEnvironmentOrders: [{ order: 1, computeEnvironment: computeEnvironment.arn }],
  });

  const jobDefinition = new aws.batch.JobDefinition('training', {
    name: `${name}-training`,
    type: 'container',
    platformCapabilities: ['EC2'],
    propagateTags: true,
    containerProperties: containerProperties(
      cfg,
      pulumi.interpolate`${repository.repositoryUrl}:${cfg.imageTag}`,
      executionRole.arn,
      r2Secret.arn,
      logGroup.name,
      storage,
    ),
    retryStrategy: {
      attempts: cfg.jobAttempts,
      evaluateOnExits: [
        // A reclaimed spot instance: run again; the job resumes from its checkpoints in R2.
        { onStatusReason: 'Host EC2*', action: 'RETRY' },
        { onReason: 'CannotPullContainerError*', action: 'RETRY' },
        // Anything else (bad data, a bug) fails fast instead of burning GPU hours.
        { onReason: '*', action: 'EXIT' },
      ],
    },
    timeout: { attemptDurationSeconds: cfg.jobTimeoutSeconds },
  });

  const submitResources = [
    jobQueue.arn,
    jobDefinition.arnPrefix,
    pulumi.interpolate`${jobDefinition.arnPrefix}:*`,
  ];

  const schedulerRole = new aws.iam.Role('scheduler', {
    assumeRolePolicy: assumeRolePolicy('scheduler.amazonaws.com', cfg.awsAccountId),
  });
  const schedulerPolicy = new aws.iam.RolePolicy('scheduler-submit', {
    role: schedulerRole.id,
    policy: policyDocument(allow(['batch:SubmitJob'], submitResources)),
  });

  const schedule = new aws.scheduler.Schedule('training', {
    name: `${name}-training`,
    description: 'Scheduled FreeTumor retraining (gated promotion to R2)',
    scheduleExpression: cfg.schedule,
    scheduleExpressionTimezone: cfg.scheduleTimezone,
    flexibleTimeWindow: { mode: 'OFF' },
    state: 'ENABLED',
    target: {
      // EventBridge Scheduler has no Batch target block; the universal target calls the API itself.
      arn: 'arn:aws:scheduler:::aws-sdk:batch:submitJob',
      roleArn: schedulerRole.arn,
      input: pulumi.jsonStringify({
        JobName: `${name}-scheduled`,
        JobQueue: jobQueue.arn,
        JobDefinition: jobDefinition.arnPrefix,
      }),
      retryPolicy: { maximumRetryAttempts: 3, maximumEventAgeInSeconds: 3600 },
    },
  });

  const retrainUser = new aws.iam.User('edge-retrain', { name: `${name}-edge-retrain` });
  const retrainPolicy = new aws.iam.UserPolicy('edge-retrain-submit', {
    user: retrainUser.name,
    policy: policyDocument(allow(['batch:SubmitJob'], submitResources)),
  });
  const retrainKey = new aws.iam.AccessKey('edge-retrain', { user: retrainUser.name });

  return {
    repository,
    repositoryLifecycle,
    r2Secret,
    r2SecretVersion,
    logGroup,
    instanceRole,
    instanceRoleEcs,
    instanceProfile,
    executionRole,
    executionPolicy,
    hostLaunchTemplate,
    computeEnvironment,
    jobQueue,
    jobDefinition,
    schedulerRole,
    schedulerPolicy,
    schedule,
    retrainUser,
    retrainPolicy,
    retrainKey,
  };
}
