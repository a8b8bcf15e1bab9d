// The official TypeScript SDK v2 client, pinned to protocol revision 2026-07-28, against a
// running gatehouse: discover, list tools, call one, with the token in GATEHOUSE_TOKEN.
// Usage: node ts-client.mjs URL MODE   MODE: pin (2026-07-28), auto (probe server/discover) or
// legacy (initialize handshake); exit 0 when every check holds.
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';

const [url, mode = 'pin'] = process.argv.slice(2);
const token = process.env.GATEHOUSE_TOKEN;
const fail = (msg) => {
  console.error(`FAIL (TypeScript SDK v2, ${mode}): ${msg}`);
  process.exit(1);
};

const versionNegotiation = { mode: mode === 'pin' ? { pin: '2026-07-28' } : mode };
const client = new Client({ name: 'gatehouse-ci', version: '1.0.0' }, { versionNegotiation });
const transport = new StreamableHTTPClientTransport(new URL(url), {
  requestInit: { headers: token ? { Authorization: `Bearer ${token}` } : {} },
});
await client.connect(transport);

const version = client.getNegotiatedProtocolVersion();
const expected = mode === 'legacy' ? '2025-11-25' : '2026-07-28';
if (version !== expected) fail(`negotiated ${version}, expected ${expected}`);

const { tools } = await client.listTools();
const names = tools.map((t) => t.name);
if (!names.includes('greet_user')) fail(`greet_user not listed: ${names.join(', ')}`);

const result = await client.callTool({ name: 'greet_user', arguments: { name: 'Ada' } });
const text = result.content?.[0]?.text ?? '';
if (result.isError || !text.includes('Ada')) fail(`unexpected result ${JSON.stringify(result)}`);

await client.close();
console.log(`ok: TypeScript SDK v2 (${version}) listed ${names.length} tools and called greet_user: ${text}`);
