/** Which document of a job an artifact belongs to; its pointer is relative to that document. */
export const ARTIFACT_ROLES = ['request', 'response'] as const;
export type ArtifactRole = (typeof ARTIFACT_ROLES)[number];

/**
 * How the stored bytes go back into the document: `data_url` rebuilds a
 * `data:<content_type>;base64,…` string, `json` parses the bytes as a JSON value.
 */
export const ARTIFACT_KINDS = ['data_url', 'json'] as const;
export type ArtifactKind = (typeof ARTIFACT_KINDS)[number];

/** One offloaded value of a job's document, as kept in job_artifacts. */
export interface ArtifactRecord {
  role: ArtifactRole;
  /** JSON pointer of the value inside its document; '' for the whole document. */
  pointer: string;
  kind: ArtifactKind;
  storageUri: string;
  byteSize: number;
  sha256: string;
  contentType: string;
}
