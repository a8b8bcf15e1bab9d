// The MCP Apps host of the browser test (bundled by esbuild, driven by run-host.mjs): what a
// real host does with gatehouse, with AppBridge from @modelcontextprotocol/ext-apps. It calls get_org_data through gatehouse (a Bearer token,
// CORS), reads the view the tool names, renders it in a sandboxed iframe, pushes the result to
// it, forwards the view's tool calls to gatehouse with the same token, and writes what happened
// to <pre id="results"> for scripts/browser-test.sh.
import { AppBridge, PostMessageTransport } from "@modelcontextprotocol/ext-apps/app-bridge";

const params = new URLSearchParams(location.hash.slice(1));
const endpoint = params.get("endpoint");
const token = params.get("token");
const results = { calls: [], shown: [], errors: [] };
const report = () => {
  document.getElementById("results").textContent = "RESULTS " + JSON.stringify(results);
};

let nextId = 1;
async function rpc(method, rpcParams) {
  const r = await fetch(endpoint, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      authorization: "Bearer " + token,
      "mcp-protocol-version": "2025-11-25",
    },
    body: JSON.stringify({ jsonrpc: "2.0", id: nextId++, method, params: rpcParams }),
  });
  const body = await r.json();
  if (body.error) throw new Error(method + ": " + body.error.message);
  return body.result;
}

async function main() {
  const tools = await rpc("tools/list", {});
  const tool = tools.tools.find((t) => t.name === "get_org_data");
  const uri = tool._meta.ui.resourceUri;
  results.resourceUri = uri;
  results.appOnly = tools.tools
    .filter((t) => JSON.stringify(t._meta?.ui?.visibility) === '["app"]')
    .map((t) => t.name);
  const resource = await rpc("resources/read", { uri });
  const page = resource.contents[0];
  results.mimeType = page.mimeType;
  const first = await rpc("tools/call", { name: "get_org_data", arguments: {} });

  // The frame first, then the bridge listening to it, then the page: the view speaks first.
  const iframe = document.createElement("iframe");
  iframe.setAttribute("sandbox", "allow-scripts");
  iframe.style.cssText = "width:480px;height:260px;border:1px solid #999";
  document.getElementById("view").append(iframe);

  const bridge = new AppBridge(
    null,
    { name: "gatehouse-browser-test-host", version: "1.0.0" },
    { serverTools: {}, updateModelContext: { text: {} } },
  );
  bridge.oncalltool = async (call) => {
    results.calls.push(call.name);
    report();
    return await rpc("tools/call", { name: call.name, arguments: call.arguments ?? {} });
  };
  bridge.onupdatemodelcontext = async (update) => {
    results.shown.push(update.structuredContent ?? null);
    // Done once the view showed what its refresh (the app-only tool) returned.
    results.done = results.calls.includes("refresh_org_data") && results.shown.length >= 2;
    report();
    return {};
  };
  bridge.oninitialized = () => {
    results.initialized = true;
    bridge.sendToolResult(first);
    report();
  };
  await bridge.connect(new PostMessageTransport(iframe.contentWindow, iframe.contentWindow));
  iframe.srcdoc = page.text;
  report();
}

main().catch((e) => {
  results.errors.push(String(e && e.message ? e.message : e));
  report();
});
