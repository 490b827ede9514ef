import type { Config } from '../config/schema.js';

export interface UpstreamChoice {
  url: string;
  injectStreamUsage: boolean;
  promptCacheKey: boolean;
}

/** The upstream serving `model`: the first matching route, else the default. */
export function chooseUpstream(config: Config['upstream'], model: string | undefined): UpstreamChoice {
  const route = model === undefined ? undefined : config.routes.find((candidate) => globMatch(candidate.model, model));
  const url = route?.url ?? config.url;
  const cacheKey = route?.prompt_cache_key ?? config.prompt_cache_key;
  return {
    url,
    injectStreamUsage: route?.inject_stream_usage ?? config.inject_stream_usage,
    promptCacheKey: cacheKey === 'auto' ? acceptsPromptCacheKey(url) : cacheKey,
  };
}

const known = new Map<string, boolean>();

/** OpenAI documents prompt_cache_key; other OpenAI-compatible servers may answer an unknown field with 400. */
function acceptsPromptCacheKey(url: string): boolean {
  let accepts = known.get(url);
  if (accepts === undefined) {
    accepts = new URL(url).hostname === 'api.openai.com';
    known.set(url, accepts);
  }
  return accepts;
}

const globs = new Map<string, RegExp>();

/**
 * Shell-style glob (`*`, `?`) match. Compiled once per pattern: model tables
 * (context windows, prices) are scanned on every turn.
 */
export function globMatch(pattern: string, value: string): boolean {
  let regex = globs.get(pattern);
  if (!regex) {
    const source = pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.');
    regex = new RegExp(`^${source}$`);
    globs.set(pattern, regex);
  }
  return regex.test(value);
}
