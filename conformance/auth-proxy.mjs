// A loopback proxy for the conformance run with auth on: forwards every request to the target
// unchanged (Host and Origin included, so the DNS-rebinding scenario still means something)
// and adds `Authorization: Bearer $GATEHOUSE_TOKEN`. Usage: node auth-proxy.mjs LISTEN_PORT TARGET_PORT
import http from "node:http";

const [listenPort, targetPort] = process.argv.slice(2).map(Number);
const token = process.env.GATEHOUSE_TOKEN;
if (!listenPort || !targetPort || !token) {
  console.error("usage: GATEHOUSE_TOKEN=... node auth-proxy.mjs LISTEN_PORT TARGET_PORT");
  process.exit(2);
}

http
  .createServer((req, res) => {
    const headers = { ...req.headers, authorization: `Bearer ${token}` };
    const upstream = http.request(
      { host: "127.0.0.1", port: targetPort, method: req.method, path: req.url, headers },
      (up) => {
        res.writeHead(up.statusCode, up.headers);
        up.pipe(res);
      },
    );
    upstream.on("error", () => {
      res.writeHead(502);
      res.end();
    });
    req.pipe(upstream);
  })
  .listen(listenPort, "127.0.0.1");
