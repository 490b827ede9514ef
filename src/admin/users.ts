import { eraseSession } from '../memory/erase.js';
import { Router, type Request } from 'express';
import { z } from 'zod';
import { NotFoundError } from '../errors.js';
import { emptyProfile, type UserProfile } from '../memory/profile.js';
import { redactText } from '../memory/redact.js';
import type { ProxyDeps } from '../proxy/deps.js';
import { adminTenant, userKey, validateId } from '../proxy/identify.js';
import { parseBody } from './validate.js';

const profileInput = z.strictObject({
  text: z.string().max(20_000).optional(),
  attributes: z.record(z.string().min(1).max(100), z.string().max(2_000)).optional(),
});
const profilePatch = z.strictObject({
  text: z.string().max(20_000).optional(),
  /** A null value removes the attribute. */
  attributes: z.record(z.string().min(1).max(100), z.string().max(2_000).nullable()).optional(),
});

/** /mnemo/users/*: a user's profile across sessions, and erasing a user. */
export function userRoutes(deps: ProxyDeps): Router {
  const router = Router();
  const target = (req: Request) => {
    const tenant = adminTenant(req.headers, deps.config().tenancy);
    const id = validateId(String(req.params.id), 'User id');
    return { id, tenant, key: userKey(tenant, id) };
  };
  const view = (id: string, profile: UserProfile) => ({
    object: 'mnemo.user_profile',
    user: id,
    text: profile.text,
    attributes: profile.attributes,
    facts: Object.values(profile.facts).map((fact) => ({
      name: fact.name,
      value: fact.value,
      source_message_id: fact.source,
      at: fact.at,
      history: fact.history,
    })),
    updated_at: profile.updatedAt,
  });
  const redact = (text: string) => redactText(text, deps.config().privacy.redact);

  router.get('/:id/profile', async (req, res) => {
    const { id, key } = target(req);
    const profile = await deps.store.getRecord<UserProfile>(key);
    if (!profile) throw new NotFoundError(`No profile for user ${id}.`, 'profile_not_found');
    res.json(view(id, profile));
  });

  router.put('/:id/profile', async (req, res) => {
    const { id, key } = target(req);
    const input = parseBody(profileInput, req.body);
    const current = await deps.store.getRecord<UserProfile>(key);
    const profile: UserProfile = {
      ...(current ?? emptyProfile(deps.now())),
      text: redact(input.text ?? ''),
      attributes: Object.fromEntries(Object.entries(input.attributes ?? {}).map(([name, value]) => [name, redact(value)])),
      updatedAt: deps.now(),
    };
    await deps.store.setRecord(key, profile);
    res.json(view(id, profile));
  });

  router.patch('/:id/profile', async (req, res) => {
    const { id, key } = target(req);
    const input = parseBody(profilePatch, req.body);
    const current = (await deps.store.getRecord<UserProfile>(key)) ?? emptyProfile(deps.now());
    const attributes = { ...current.attributes };
    for (const [name, value] of Object.entries(input.attributes ?? {})) {
      if (value === null) delete attributes[name];
      else attributes[name] = redact(value);
    }
    const profile: UserProfile = {
      ...current,
      text: input.text === undefined ? current.text : redact(input.text),
      attributes,
      updatedAt: deps.now(),
    };
    await deps.store.setRecord(key, profile);
    res.json(view(id, profile));
  });

  router.delete('/:id/profile', async (req, res) => {
    const { id, key } = target(req);
    if (!(await deps.store.deleteRecord(key))) throw new NotFoundError(`No profile for user ${id}.`, 'profile_not_found');
    res.json({ object: 'mnemo.user_profile.deleted', user: id, deleted: true });
  });

  // Erases the user's profile and, with ?sessions=true, every session that belongs to them.
  router.delete('/:id', async (req, res) => {
    const { id, tenant, key } = target(req);
    const profileDeleted = await deps.store.deleteRecord(key);
    let sessionsDeleted = 0;
    if (req.query.sessions === 'true') {
      const owned: string[] = [];
      for await (const { sessionKey, meta } of deps.store.listSessions(`${tenant}:`)) if (meta.memory.user === id) owned.push(sessionKey);
      for (const sessionKey of owned) if (await eraseSession(deps.store, sessionKey, deps.now())) sessionsDeleted++;
    }
    if (!profileDeleted && sessionsDeleted === 0) throw new NotFoundError(`Nothing stored for user ${id}.`, 'user_not_found');
    res.json({ object: 'mnemo.user.deleted', user: id, profile_deleted: profileDeleted, sessions_deleted: sessionsDeleted });
  });

  return router;
}
