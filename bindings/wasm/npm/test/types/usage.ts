// Compiled (never run) by scripts/test-npm.sh against the packed package installed as
// node_modules/sotto-wasm: the declarations resolve through "exports", type-check under
// `strict`, and give real types (an `any` would let the @ts-expect-error lines compile, and
// tsc would then fail on the unused directives).

import { init, configure, isInitialized, SottoClient } from 'sotto-wasm';
import type { InitOptions, Message, RegisterOptions, Sent, SottoError, SottoEvent, SottoWarning } from 'sotto-wasm';
import { SottoClient as TeamClient, init as initTeam } from 'sotto-wasm/team';
import type { Membership, Role, TeamMember } from 'sotto-wasm/team';

type IsAny<T> = 0 extends 1 & T ? true : false;
type NotAny<T> = IsAny<T> extends true ? never : T;
const notAny = <T>(value: NotAny<T>): T => value;

export async function visitor(relay: string, widgetId: string, teamRef: string): Promise<string[]> {
  const options: InitOptions = { wasmUrl: new URL('/assets/sotto.wasm', 'https://shop.example') };
  configure(options);
  await init();
  const loaded: boolean = isInitialized();
  const register: RegisterOptions = { relay, widgetId, database: 'sotto', kind: 'visitor' };
  const client: SottoClient = notAny(await SottoClient.register(register));
  const conversation: string = notAny(await client.openConversation(teamRef));
  const sent: Sent = notAny(await client.sendText(conversation, 'Hello'));
  const cursor: number | null = sent.cursor;
  const history: Message[] = notAny(await client.history(conversation, 20, cursor));
  const event: SottoEvent = notAny(await client.nextEvent());
  const lines = history.map((m) => `${m.mine ? 'me' : m.sender}: ${m.text ?? m.kind}`);
  if (event.type === 'message') lines.push(event.message.text ?? '');
  if (event.type === 'warning') {
    const warning: SottoWarning = event.warning;
    if (warning.kind === 'gap') lines.push(`${warning.missing} missing`);
  }
  const bytes: Uint8Array = notAny(await client.fetchAttachment(conversation, 1));
  lines.push(String(bytes.length), String(loaded), client.deviceId);
  try {
    await client.sendTyping(conversation, true);
  } catch (e) {
    const error = e as SottoError;
    const code: string = error.code;
    lines.push(code, error.message);
  }
  // @ts-expect-error kind is "visitor" or "member"
  await SottoClient.register({ ...register, kind: 'robot' });
  // @ts-expect-error the team calls are in sotto-wasm/team only
  await client.createTeam();
  // @ts-expect-error a conversation id is a string
  await client.sendText(42, 'Hello');
  // @ts-expect-error the history holds messages, not strings
  const wrong: string[] = await client.history(conversation, 20);
  lines.push(...wrong);
  return lines;
}

export async function owner(relay: string, widgetId: string, bootstrapCode: string, device: string): Promise<Role> {
  await initTeam();
  const client: TeamClient = await TeamClient.register({ relay, widgetId, database: 'agent', kind: 'member', bootstrapCode });
  const teamRef: string = notAny(await client.createTeam());
  const team = teamRef.split(':')[0];
  const member: string = notAny(await client.inviteMember(team, device, 'agent'));
  // @ts-expect-error not a role
  await client.changeRole(team, member, 'janitor');
  const members: TeamMember[] = notAny(await client.members(team));
  const me: Membership | null = notAny(await client.membership(team));
  return me?.role ?? members[0].role;
}
