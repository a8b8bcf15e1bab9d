// The pattern gatehouse replaces, reduced to what the benchmark exercises: Express, CORS,
// Bearer JWT validation against a remote JWKS (jose, audience + issuer), and the official MCP
// SDK serving stateless Streamable HTTP (a fresh server + transport per POST, as its stateless
// examples do) with a greet_user tool. Usage: ISSUER=... AUDIENCE=... PORT=... node server.mjs
import express from "express";
import cors from "cors";
import { createRemoteJWKSet, jwtVerify } from "jose";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { z } from "zod";

const { ISSUER, AUDIENCE, PORT } = process.env;
const jwks = createRemoteJWKSet(new URL(`${ISSUER}/keys`));
const app = express();
app.use(cors({ exposedHeaders: ["WWW-Authenticate"] }));
app.use(express.json());

app.use("/mcp", async (req, res, next) => {
  const h = req.headers.authorization || "";
  const token = h.startsWith("Bearer ") ? h.slice(7) : null;
  if (!token) {
    res.set("WWW-Authenticate", 'Bearer resource_metadata="x"').status(401).json({ error: "unauthorized" });
    return;
  }
  try {
    const { payload } = await jwtVerify(token, jwks, { issuer: ISSUER, audience: AUDIENCE });
    req.auth = payload;
    next();
  } catch {
    res.status(401).json({ error: "invalid_token" });
  }
});

function build() {
  const server = new McpServer({ name: "baseline", version: "1.0.0" });
  server.registerTool(
    "greet_user",
    { description: "Greets a user by name.", inputSchema: { name: z.string().min(1) } },
    async ({ name }) => ({ content: [{ type: "text", text: `Hi ${name}, welcome!` }] }),
  );
  return server;
}

app.post("/mcp", async (req, res) => {
  const server = build();
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
  res.on("close", () => {
    transport.close();
    server.close();
  });
  await server.connect(transport);
  await transport.handleRequest(req, res, req.body);
});

app.listen(Number(PORT), "127.0.0.1");
