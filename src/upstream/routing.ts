import type { Config } from '../config/schema.js';

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
