// Decides one send with a client generated from the running service's /openapi.json (openapi-typescript
// + openapi-fetch), reads it back from the decision log, and prints what it got as JSON.
// Usage: node build/check.js http://127.0.0.1:8000   (tests/web/test_typed_clients.py runs it)
import createClient from "openapi-fetch";
import type { components, paths } from "./generated/schema.js";

declare const process: { argv: string[] };

type DecisionResponse = components["schemas"]["DecisionResponse"];

const baseUrl = process.argv[2];
if (baseUrl === undefined) throw new Error("usage: node build/check.js BASE_URL");
const client = createClient<paths>({ baseUrl });

const decided = await client.POST("/v1/decisions", {
  body: {
    send: {
      at: "2025-08-12T12:00:00+00:00", to: "+5511987654321", type: "template",
      template: { name: "order_update", language: "en", category: "utility", status: "APPROVED" },
    },
    history: [{ direction: "inbound", at: "2025-08-12T09:00:00+00:00", type: "text" }],
  },
});
if (decided.error !== undefined) {
  throw new Error(`decision refused: ${decided.error.code} ${decided.error.message}`);
}
const body: DecisionResponse = decided.data;
const verdict: "allow" | "deny" = body.decision;
const charge = body.charge; // Charge | null: the compiler makes us check before reading it
const billable: boolean | null = charge === null ? null : charge.billable;

const logged = await client.GET("/v1/decisions/{decision_id}", {
  params: { path: { decision_id: body.decision_id } },
});
if (logged.error !== undefined) {
  throw new Error(`decision ${body.decision_id} not found in the log: ${logged.error.message}`);
}
const page = await client.GET("/v1/decisions", { params: { query: { decision: "allow", page_size: 5 } } });

console.log(JSON.stringify({
  decision: verdict,
  status: body.status,
  required_message_type: body.required_message_type,
  billable,
  charge_type: charge?.type ?? null,
  determining_rules: body.determining_rules,
  first_reason_confidence: body.trace[0]?.confidence ?? null,
  logged_decision: logged.data.decision,
  pagination: page.response.headers.get("X-Pagination"),
}));

// Compiled, never called: each line must be a type error, or tsc fails on the unused directive. This is
// what the contract's enums, required fields and nullable charge buy a typed client.
export function contractMistakes(response: DecisionResponse): void {
  // @ts-expect-error -- "alow" is not one of the decision enum's values
  if (response.decision === "alow") return;
  // @ts-expect-error -- charge is null when no charge rule applied
  console.log(response.charge.billable);
  // @ts-expect-error -- confidence is "C" | "S" | "R"
  const confidence: "X" = response.trace[0]!.confidence;
  // @ts-expect-error -- a status the service never answers
  if (response.status === "maybe") return;
  console.log(confidence);
}
