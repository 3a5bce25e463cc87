export const API_KEY_SCOPES = ['client', 'worker', 'admin'] as const;
export type ApiKeyScope = (typeof API_KEY_SCOPES)[number];
