/**
 * FileSource over a checkpoint directory: positional reads through fs.promises FileHandles kept
 * open per file, at most 64 MiB per read call, so multi-GB safetensors are never read whole.
 */
import { open, stat, type FileHandle } from 'node:fs/promises';
import { isAbsolute, join, resolve, sep } from 'node:path';
import { CheckpointError } from '../../src/errors.js';
import type { FileSource } from '../../src/io/source.js';

const CHUNK = 64 * 1024 * 1024;

export interface NodeFileSource extends FileSource {
  close(): Promise<void>;
}

export function nodeFileSource(directory: string): NodeFileSource {
  const root = resolve(directory);
  const handles = new Map<string, Promise<FileHandle>>();
  let closed = false;

  // Names come from index files too: keep them inside the directory.
  const pathOf = (name: string): string => {
    const p = resolve(join(root, name));
    if (isAbsolute(name) || !(p === root || p.startsWith(root + sep))) {
      throw new CheckpointError(`${root}: file name ${JSON.stringify(name)} points outside the checkpoint directory`, { file: name });
    }
    return p;
  };

  const handle = (name: string): Promise<FileHandle> => {
    if (closed) throw new CheckpointError(`${root}: source is closed (reading ${name})`, { file: name });
    let h = handles.get(name);
    if (!h) {
      h = open(pathOf(name), 'r');
      handles.set(name, h);
      h.catch(() => handles.delete(name));
    }
    return h;
  };

  return {
    location: root,
    async size(name) {
      try {
        const s = await stat(pathOf(name));
        return s.isFile() ? s.size : undefined;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
        throw e;
      }
    },
    async read(name, offset, dst) {
      let fh: FileHandle;
      try {
        fh = await handle(name);
      } catch (cause) {
        if (cause instanceof CheckpointError) throw cause;
        throw new CheckpointError(`${join(root, name)}: cannot open (${(cause as Error).message})`, { file: name, cause });
      }
      let done = 0;
      while (done < dst.length) {
        const n = Math.min(CHUNK, dst.length - done);
        const { bytesRead } = await fh.read(dst, done, n, offset + done);
        if (bytesRead === 0) {
          throw new CheckpointError(
            `${join(root, name)}: unexpected end of file reading ${dst.length} bytes at offset ${offset} (got ${done})`,
            { file: name },
          );
        }
        done += bytesRead;
      }
    },
    async close() {
      closed = true;
      const all = [...handles.values()];
      handles.clear();
      await Promise.all(all.map(async (h) => (await h.catch(() => undefined))?.close()));
    },
  };
}
