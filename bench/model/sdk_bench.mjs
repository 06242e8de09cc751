// sdk_bench.mjs — the OpenAI Agents SDK (JavaScript) column of
// bench/model/run.sh: the same three kinds of turn as model_bench, with the
// same agents (sales hands off to support; support has the exec tool
// lookup_ticket, which runs the same bench/model/lookup_ticket.sh), against
// the same loopback fake_openai, in the chat-completions API mode, tracing off.
//
//   node sdk_bench.mjs --url http://127.0.0.1:PORT/v1 --out sdk.json
//                      [--body body.json] [--samples 200] [--warmup 20]
//
// Per sample, interleaved: (a) node's fetch() with the body swarmfs sends for
// a plain turn (model_bench --body-out), streamed to its end; then one
// streamed run() each of plain, handoff and tool, each a fresh run (no
// session), so every sample's context has the same size. "last" is the time
// of the last text delta, "end" the time the run's stream completed. One more
// kind, tool_in_process, has the tool as an in-process function (no spawn).
// Writes {"skipped": reason} instead when the SDK cannot be loaded.
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const args = { samples: 200, warmup: 20, body: '' };
for (let i = 2; i < process.argv.length; i += 2) {
  const key = process.argv[i].replace(/^--/, '');
  args[key] = process.argv[i + 1];
}
const samples = Number(args.samples);
const warmup = Number(args.warmup);
if (!args.url || !args.out || !(samples > 0) || !(warmup >= 0)) {
  console.error('usage: node sdk_bench.mjs --url BASE_URL --out FILE [--body FILE] [--samples N] [--warmup N]');
  process.exit(2);
}

let sdk, OpenAI, z;
try {
  sdk = await import('@openai/agents');
  OpenAI = (await import('openai')).default;
  z = (await import('zod')).z;
} catch (e) {
  writeFileSync(args.out, JSON.stringify({ skipped: `cannot load the SDK: ${e.message}` }) + '\n');
  console.error(`sdk_bench: cannot load the SDK: ${e.message}`);
  process.exit(0);
}
const { Agent, run, tool, setTracingDisabled, setOpenAIAPI, setDefaultOpenAIClient, OpenAIChatCompletionsModel } = sdk;
const version = JSON.parse(readFileSync(join(here, 'node_modules/@openai/agents/package.json'), 'utf8')).version;

const apiKey = 'sk-swarmfs-bench';
const client = new OpenAI({ baseURL: args.url, apiKey, maxRetries: 0 });
setDefaultOpenAIClient(client);
setOpenAIAPI('chat_completions');
setTracingDisabled(true);
const model = new OpenAIChatCompletionsModel(client, 'fake-model');

// The exec tool: the same script swarmfs runs, JSON arguments on stdin.
function runScript(input) {
  return new Promise((resolve, reject) => {
    const p = spawn(join(here, 'lookup_ticket.sh'), [], { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.setEncoding('utf8');
    p.stdout.on('data', (d) => (out += d));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve(out.replace(/\n$/, '')) : reject(new Error(`exit status ${code}`))));
    p.stdin.end(input);
  });
}

const lookupTicket = tool({
  name: 'lookup_ticket',
  description: 'Look up a support ticket by its id.',
  parameters: z.object({ id: z.number().int() }),
  execute: async (input) => runScript(JSON.stringify(input) + '\n'),
});
const support = new Agent({
  name: 'support',
  instructions: 'You are support. Answer briefly; look tickets up with lookup_ticket.',
  model,
  tools: [lookupTicket],
});
// For reference only (not in the table's rows): the same tool as an
// in-process function, which is how an SDK user would usually write it.
const lookupInProcess = tool({
  name: 'lookup_ticket',
  description: 'Look up a support ticket by its id.',
  parameters: z.object({ id: z.number().int() }),
  execute: async (input) => JSON.stringify({ ticket: input, status: 'open', subject: 'printer on fire' }),
});
const supportInProcess = new Agent({
  name: 'support',
  instructions: 'You are support. Answer briefly; look tickets up with lookup_ticket.',
  model,
  tools: [lookupInProcess],
});
const sales = new Agent({
  name: 'sales',
  instructions: 'You are sales. Hand support questions to support.',
  model,
  handoffs: [support],
});

// Same messages and expected replies as model_bench.
const kinds = [
  { name: 'plain', agent: sales, message: 'hello from the bench\n', expect: 'echo: hello from the bench' },
  { name: 'handoff', agent: sales, message: '[handoff:support] my printer is on fire\n', expect: 'tool transfer_to_support said:' },
  {
    name: 'tool',
    agent: support,
    message: '[tool:lookup_ticket {"id":42}] what is the status of ticket 42?\n',
    expect: 'tool lookup_ticket said: {"ticket":{"id":42}',
  },
  {
    name: 'tool_in_process',
    agent: supportInProcess,
    message: '[tool:lookup_ticket {"id":42}] what is the status of ticket 42?\n',
    expect: 'tool lookup_ticket said: {"ticket":{"id":42}',
  },
];

async function turn(kind) {
  const t0 = performance.now();
  let last = t0;
  let text = '';
  const result = await run(kind.agent, kind.message, { stream: true });
  for await (const ev of result) {
    if (ev.type === 'raw_model_stream_event' && ev.data.type === 'output_text_delta') {
      text += ev.data.delta;
      last = performance.now();
    }
  }
  await result.completed;
  const end = performance.now();
  if (result.error) throw result.error;
  const final = String(result.finalOutput ?? '');
  if (!final.startsWith(kind.expect) || !text.startsWith(kind.expect))
    throw new Error(`${kind.name} turn: unexpected reply ${JSON.stringify(final)} (expected ${JSON.stringify(kind.expect)}...)`);
  return { last: last - t0, end: end - t0 };
}

const body = args.body ? readFileSync(args.body, 'utf8') : null;
async function direct() {
  const t0 = performance.now();
  const r = await fetch(`${args.url}/chat/completions`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'text/event-stream, application/json', Authorization: `Bearer ${apiKey}` },
    body,
  });
  let last = t0;
  let all = '';
  const dec = new TextDecoder();
  for await (const chunk of r.body) {
    all += dec.decode(chunk, { stream: true });
    last = performance.now();
  }
  const end = performance.now();
  if (r.status !== 200 || !all.includes('data: [DONE]')) throw new Error(`direct request: HTTP ${r.status}: ${all.slice(0, 300)}`);
  return { last: last - t0, end: end - t0 };
}

const results = { direct: { last: [], end: [] } };
for (const k of kinds) results[k.name] = { last: [], end: [] };
try {
  for (let i = 0; i < warmup + samples; i++) {
    const round = [];
    if (body) round.push(['direct', await direct()]);
    for (const k of kinds) round.push([k.name, await turn(k)]);
    if (i < warmup) continue;
    for (const [name, s] of round) {
      results[name].last.push(s.last);
      results[name].end.push(s.end);
    }
    if ((i - warmup + 1) % 50 === 0) console.error(`sdk_bench: ${i - warmup + 1}/${samples} samples`);
  }
} catch (e) {
  writeFileSync(args.out, JSON.stringify({ skipped: `the SDK run failed: ${e.message}` }) + '\n');
  console.error(`sdk_bench: ${e.stack || e.message}`);
  process.exit(1);
}
writeFileSync(
  args.out,
  JSON.stringify({ client: 'openai-agents-js', version, node: process.versions.node, samples, warmup, ...results }) + '\n',
);
