// graphql-ws, the protocol's reference client: follow one notification, one JSON line per event.
// usage: node graphql_ws_client.mjs <ws url> <api key> <notification id>
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(path.join(process.env.NODE_PATH, "noop.js"));
const { createClient } = require("graphql-ws");
const WebSocket = require("ws");

const [url, key, id] = process.argv.slice(2);
const client = createClient({
  url,
  webSocketImpl: WebSocket,
  connectionParams: { Authorization: `Bearer ${key}` },
  retryAttempts: 0,
});
const timer = setTimeout(() => { console.error("timed out"); process.exit(2); }, 20000);
const query = `subscription ($id: ID) { notificationEvents(id: $id) { status sequence } }`;
client.subscribe(
  { query, variables: { id } },
  {
    next: (result) => {
      if (result.errors) { console.error(JSON.stringify(result.errors)); process.exit(1); }
      console.log(JSON.stringify(result.data.notificationEvents));
    },
    error: (error) => { console.error(String(error?.reason ?? error)); process.exit(1); },
    complete: () => { clearTimeout(timer); client.dispose(); },
  },
);
