/** The CLI's `--engine` values (engine.ts makes the runners); a module of its own so options parse cheaply. */
export const ENGINE_CHOICES = ['auto', 'ort', 'kernels'] as const;
export type EngineChoice = (typeof ENGINE_CHOICES)[number];
export type EngineName = 'ort' | 'kernels';
