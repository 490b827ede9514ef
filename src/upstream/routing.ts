import type { Config } from '../config/schema.js';
import { cachedRegExp } from '../regex-cache.js';

export interface UpstreamChoice {
  url: string;
  injectStreamUsage: boolean;
  promptCacheKey: boolean;
}

/** The upstream serving `model`: the first matching route, else the default. */
export function chooseUpstream(config: Config['upstream'], model: string | undefined): UpstreamChoice {
  const route = model === undefined ? undefined : config.routes.find((candidate) => globMatch(candidate.model, model));
  return {
    url: route?.url ?? config.url,
    injectStreamUsage: route?.inject_stream_usage ?? config.inject_stream_usage,
    promptCacheKey: route?.prompt_cache_key ?? config.prompt_cache_key,
  };
}

/** Shell-style glob (`*`, `?`) match; compiled patterns are cached. */
export function globMatch(pattern: string, value: string): boolean {
  const source = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return cachedRegExp(`^${source}$`).test(value);
}
