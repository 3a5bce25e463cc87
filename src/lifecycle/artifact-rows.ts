import type { NewJobArtifactRow } from '../db/types.js';
import type { ArtifactRecord } from '../domain/artifacts.js';

export function toArtifactRows(jobId: string, artifacts: readonly ArtifactRecord[]): NewJobArtifactRow[] {
  return artifacts.map((a) => ({
    job_id: jobId,
    role: a.role,
    pointer: a.pointer,
    kind: a.kind,
    storage_uri: a.storageUri,
    byte_size: a.byteSize,
    sha256: a.sha256,
    content_type: a.contentType,
  }));
}
