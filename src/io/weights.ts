/**
 * The weight files of a checkpoint: model.safetensors.index.json (sharded: weight_map tensor → file)
 * when present, else a single model.safetensors. Every shard's header is parsed and validated; the
 * result maps each tensor name to the file holding it.
 */
import { CheckpointError } from '../errors.js';
import { readSafetensorsHeader, type SafetensorsEntry, type SafetensorsFile } from './safetensors.js';
import { readWhole, type FileSource } from './source.js';

export const SINGLE_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';

export interface WeightFiles {
  readonly files: readonly SafetensorsFile[];
  readonly tensors: ReadonlyMap<string, { readonly file: SafetensorsFile; readonly entry: SafetensorsEntry }>;
}

/** Opens and validates the weight files of `src`; shard problems are reported together. */
export async function openWeightFiles(src: FileSource): Promise<WeightFiles> {
  if ((await src.size(INDEX_FILE)) !== undefined) return openSharded(src);
  if ((await src.size(SINGLE_FILE)) !== undefined) {
    const file = await readSafetensorsHeader(src, SINGLE_FILE);
    return { files: [file], tensors: new Map([...file.tensors].map(([n, entry]) => [n, { file, entry }])) };
  }
  const bin = (await src.size('pytorch_model.bin')) !== undefined ? ' (pytorch_model.bin is not supported: convert to safetensors)' : '';
  throw new CheckpointError(`${src.location}: no ${SINGLE_FILE} or ${INDEX_FILE}${bin}`, { file: SINGLE_FILE });
}

/** Shard names must stay inside the checkpoint (a weight_map must not point at ../ or absolute paths). */
function safeShardName(name: string): boolean {
  return name.length > 0 && !name.startsWith('/') && !name.includes('\\') && !name.includes('://') &&
    name.split('/').every((p) => p !== '' && p !== '.' && p !== '..');
}

async function openSharded(src: FileSource): Promise<WeightFiles> {
  const where = `${src.location}/${INDEX_FILE}`;
  let index: unknown;
  try {
    index = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(await readWhole(src, INDEX_FILE)));
  } catch (cause) {
    throw new CheckpointError(`${where}: not valid JSON (${(cause as Error).message})`, { file: INDEX_FILE, cause });
  }
  const map = (index as { weight_map?: unknown } | null)?.weight_map;
  if (map === null || typeof map !== 'object' || Array.isArray(map)) {
    throw new CheckpointError(`${where}: "weight_map" must be an object mapping tensor names to shard files`, { file: INDEX_FILE });
  }

  const problems: string[] = [];
  let firstTensor: string | undefined;
  const note = (msg: string, tensor?: string) => {
    problems.push(msg);
    firstTensor ??= tensor;
  };
  const wanted = new Map<string, string>();
  for (const [tensor, shard] of Object.entries(map as Record<string, unknown>)) {
    if (typeof shard !== 'string' || !safeShardName(shard)) {
      note(`${where}: weight_map["${tensor}"] must be a shard file name inside the checkpoint, got ${JSON.stringify(shard)}`, tensor);
    } else wanted.set(tensor, shard);
  }

  const shardNames = [...new Set(wanted.values())].sort();
  const files: SafetensorsFile[] = [];
  for (const shard of shardNames) {
    if ((await src.size(shard)) === undefined) {
      const users = [...wanted].filter(([, s]) => s === shard).map(([t]) => t);
      note(`${src.location}/${shard}: shard listed in ${INDEX_FILE} is missing (holds ${users.length} tensors, e.g. "${users[0]}")`, users[0]);
      continue;
    }
    try {
      files.push(await readSafetensorsHeader(src, shard));
    } catch (e) {
      if (!(e instanceof CheckpointError)) throw e;
      for (const p of e.problems) note(p, e.tensor);
    }
  }

  const tensors = new Map<string, { file: SafetensorsFile; entry: SafetensorsEntry }>();
  for (const file of files) {
    for (const [name, entry] of file.tensors) {
      const prev = tensors.get(name);
      if (prev) {
        note(`tensor "${name}" is stored in two shards: ${prev.file.file} and ${file.file}`, name);
        continue;
      }
      tensors.set(name, { file, entry });
    }
  }
  const opened = new Set(files.map((f) => f.file));
  for (const [tensor, shard] of wanted) {
    if (!opened.has(shard)) continue; // already reported as a missing / broken shard
    const got = tensors.get(tensor);
    if (!got) note(`${src.location}/${shard}: tensor "${tensor}" listed in ${INDEX_FILE} is not in the shard`, tensor);
    else if (got.file.file !== shard) {
      note(`tensor "${tensor}": ${INDEX_FILE} maps it to ${shard} but it is stored in ${got.file.file}`, tensor);
    }
  }

  if (problems.length) {
    const msg = problems.length === 1 ? problems[0] : `${src.location}: ${problems.length} problems in the sharded weights:\n  ${problems.join('\n  ')}`;
    throw new CheckpointError(msg, { file: INDEX_FILE, tensor: firstTensor, problems });
  }
  return { files, tensors };
}
