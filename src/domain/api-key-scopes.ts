/**
 * client: creates and reads its organization's jobs. worker: claims and reports its
 * organization's jobs. fleet: claims and reports the jobs of every organization (the operator's
 * workers); bound to no organization. admin: every route of its organization.
 */
export const API_KEY_SCOPES = ['client', 'worker', 'admin', 'fleet'] as const;
export type ApiKeyScope = (typeof API_KEY_SCOPES)[number];
