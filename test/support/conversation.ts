/** Deterministic long support conversations with facts planted early and asked about late. */

const TOPICS = [
  'the mobile app keeps logging me out after the last update',
  'I would like to change the color of the sweater in my wishlist',
  'the promo code from the newsletter does not apply at checkout',
  'can you explain how the loyalty points are calculated',
  'the tracking page shows a map that never loads',
  'I want to update the phone number on my account',
  'is there a discount for buying three items at once',
  'the size guide for the running shoes seems off',
  'my invoice shows the wrong billing address',
  'how long do refunds take to reach a credit card',
];

export interface PlantedFact {
  /** The turn (0-based) whose user message plants it. */
  turn: number;
  statement: string;
  question: string;
  /** Text that must reach the provider when the question is asked. */
  expected: string;
}

export const PLANTED: PlantedFact[] = [
  { turn: 0, statement: 'My order #7890 is stuck, can you help?', question: "What's the estimated delivery date?", expected: '7890' },
  { turn: 2, statement: 'By the way, my name is Ada Lovelace.', question: 'Which name is on my account?', expected: 'Ada Lovelace' },
  {
    turn: 4,
    statement: 'I need the parcel delivered before 2026-12-24 at the latest.',
    question: 'By which date did I say I need it?',
    expected: '2026-12-24',
  },
  {
    turn: 6,
    statement: 'Please send updates to ada@example.com only.',
    question: 'Where should you send updates?',
    expected: 'ada@example.com',
  },
  { turn: 8, statement: 'My membership number is MB-55102.', question: 'What is my membership number again?', expected: 'MB-55102' },
];

/** The user message of turn `turn` in a conversation of `length` turns (the last turns ask the questions). */
export function userMessage(turn: number, length: number): string {
  const planted = PLANTED.find((fact) => fact.turn === turn);
  if (planted) return planted.statement;
  const question = questionAt(turn, length);
  if (question) return question.question;
  const topic = TOPICS[turn % TOPICS.length]!;
  return `Another thing (${turn}): ${topic}. Could you look into it and tell me what my options are?`;
}

/** The planted fact asked about at `turn`, if any: questions fill the last turns. */
export function questionAt(turn: number, length: number): PlantedFact | undefined {
  const offset = turn - (length - PLANTED.length);
  return offset >= 0 ? PLANTED[offset] : undefined;
}

/** The facts config the tests and the benchmark use. */
export const FACT_EXTRACTORS: Array<{ name: string; pattern: string; roles?: Array<'user' | 'assistant' | 'tool'> }> = [
  { name: 'order_id', pattern: 'order\\s*#?\\s*(\\d{3,})' },
  { name: 'customer_name', pattern: 'my name is ([A-Z][a-z]+(?: [A-Z][a-z]+)?)', roles: ['user'] },
  { name: 'deadline', pattern: '(\\d{4}-\\d{2}-\\d{2})', roles: ['user'] },
  { name: 'email', pattern: '([\\w.+-]+@[\\w-]+\\.[\\w.]+)', roles: ['user'] },
  { name: 'membership_number', pattern: '\\b(MB-\\d+)\\b', roles: ['user'] },
];
