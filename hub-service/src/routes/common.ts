/** Pieces every route file uses: the error responses in the OpenAPI document, JSON helpers. */
import { ErrorBody } from '@ngsci/contract';
import type { z } from 'zod';

export const json = <T extends z.ZodType>(schema: T, description: string) => ({
  content: { 'application/json': { schema } },
  description,
});

export const errors = (...statuses: number[]) =>
  Object.fromEntries(statuses.map((s) => [s, json(ErrorBody, errorDescriptions[s] ?? 'error')]));

const errorDescriptions: Record<number, string> = {
  400: 'invalid input (code says what)',
  401: 'no valid JupyterHub token',
  403: 'the token lacks the scope',
  404: 'no such thing',
  409: 'the instance is busy with another change',
  413: 'the request body is larger than this route accepts (payload_too_large)',
  429: 'too many requests; Retry-After says when to try again',
  502: 'JupyterHub did not answer as expected',
  503: 'JupyterHub could not be asked (e.g. for the user’s groups): the request was refused, try again',
};

export const AUTH_ERRORS = [401, 403] as const;
