/**
 * Pulumi entry point (`pulumi up` in infra/): reads the stack config, declares every resource and
 * exports the outputs an operator needs.
 */
import { loadConfig } from './config.ts';
import { createStack, stackOutputs } from './program.ts';

const outputs = stackOutputs(createStack(loadConfig()));

export const bucket = outputs.bucket;
export const workerName = outputs.workerName;
export const url = outputs.url;
export const trainerRepository = outputs.trainerRepository;
export const jobQueue = outputs.jobQueue;
export const jobDefinition = outputs.jobDefinition;
export const schedule = outputs.schedule;
export const synthesisJobQueue = outputs.synthesisJobQueue;
export const synthesisJobDefinition = outputs.synthesisJobDefinition;
