"""In-process decisions/second on the fixture set: policy-service beside zen-engine and Rego (regopy).

The peers implement the V3 per-message core subset (customer service window, free-form outside it
denied, utility free in the window, other templates charged) from peers/; policy-service runs every
rule of every version and builds the full trace. All three get the same fixture requests, each in
its own parsed form (built before timing). Usage: python bench/decisions.py [--quick]
"""

from __future__ import annotations

import argparse
import json
from datetime import timedelta
from pathlib import Path

from common import banner, fixture_requests, median, policy, rounds, table

from policy_service.contract.schemas import DecisionRequestSchema, DecisionResponseSchema
from policy_service.core.engine import RulesEngine
from policy_service.core.evaluate import evaluate

PEERS = Path(__file__).resolve().parent / "peers"
QUERY = "x = data.whatsapp.result"


def peer_input(request) -> dict:
    """The request as the peers read it: epoch seconds, the template's category, the history."""
    send = request.send
    return {
        "send": {"at": int(send.at.timestamp()), "is_template": send.is_template,
                 "category": send.template.category if send.template else "none"},
        "history": [{"direction": m.direction, "at": int(m.at.timestamp()), "type": m.type} for m in request.history],
    }


def zen_decider():
    """zen-engine with the JDM decision loaded once; None and the reason if it is not installed."""
    try:
        import zen
    except ImportError as error:
        return None, f"zen-engine not installed: {error}"
    content = (PEERS / "window_charge.json").read_text()
    engine = zen.ZenEngine({"loader": lambda _key: content})
    return (lambda document: engine.evaluate("window_charge", document)["result"]), None


def rego_decider():
    """regopy with the module compiled once into a bundle; None and the reason if it is not installed."""
    try:
        import regopy
    except ImportError as error:
        return None, f"regopy not installed: {error}"
    rego = regopy.Interpreter()
    rego.add_module("whatsapp", (PEERS / "window_charge.rego").read_text())
    bundle = rego.build(QUERY)

    def decide(document):
        rego.set_input(document)
        return json.loads(str(rego.query_bundle(bundle)))["bindings"]["x"]

    return decide, None


def agreement(ours, peer, requests) -> str:
    """On V3 fixtures, how many times the peer's decision, message type, billable and charge type equal ours."""
    same = total = 0
    for (_name, _raw, request), document in zip(requests, (peer_input(r) for _, _, r in requests), strict=False):
        decision = ours(request)
        if decision.policy_version != "V3":
            continue
        answer = peer(document)
        charge = answer.get("charge") or {}
        total += 1
        same += (answer["decision"], answer["message_type"], charge.get("billable"), charge.get("type")) == (
            decision.decision, decision.required_message_type, decision.charge.billable, decision.charge.type)
    return f"{same}/{total}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    args = parser.parse_args()
    rulebook, engine = policy()
    requests = fixture_requests()
    documents = [peer_input(r) for _, _, r in requests]
    passes = 5 if args.quick else 40
    repeats = 3 if args.quick else 9
    schema, response = DecisionRequestSchema(), DecisionResponseSchema()
    unmemoized = RulesEngine(rulebook)
    unmemoized.match_memoized = unmemoized.match  # every decision and past send through durable_rules

    def ours(request):
        return evaluate(request, rulebook=rulebook, engine=engine)

    def run_ours():
        for _ in range(passes):
            for _, _, request in requests:
                ours(request)
        return passes * len(requests)

    # A stream of distinct requests: every pass of every round moves each send and history time 3 s further.
    moved = iter([[request.moved(timedelta(seconds=3 * (n + 1))) for _, _, request in requests]
                  for n in range(repeats * passes)])

    def run_ours_moved():
        for _ in range(passes):
            for request in next(moved):
                ours(request)
        return passes * len(requests)

    def run_ours_unmemoized():
        for _ in range(passes):
            for _, _, request in requests:
                evaluate(request, rulebook=rulebook, engine=unmemoized)
        return passes * len(requests)

    def run_ours_with_json():
        for _ in range(passes):
            for _, raw, _ in requests:
                response.dump(ours(schema.load(raw)))
        return passes * len(requests)

    candidates = {"policy-service evaluate(): all rules, full trace": run_ours,
                  "policy-service evaluate(), times moved each pass (distinct requests)": run_ours_moved,
                  "policy-service evaluate(), memo off (durable_rules every time)": run_ours_unmemoized,
                  "policy-service schema load + evaluate() + response dump": run_ours_with_json}
    notes, peers = [], {}
    for name, (decider, problem) in {"zen-engine (JDM, V3 subset)": zen_decider(),
                                     "Rego via regopy (bundle, V3 subset)": rego_decider()}.items():
        if decider is None:
            notes.append(f"{name}: {problem}")
            continue
        peers[name] = decider
        candidates[name] = (lambda d: lambda: _run_peer(d, documents, passes))(decider)

    rates = rounds(candidates, repeats)
    baseline = median(rates["policy-service evaluate(): all rules, full trace"])
    rows = []
    for name, values in rates.items():
        agree = agreement(ours, peers[name], requests) if name in peers else "-"
        rows.append((name, median(values), 1e6 / median(values), baseline / median(values), agree))
    print(banner())
    print(f"{len(requests)} fixture requests x {passes} passes, median of {repeats} interleaved rounds\n")
    print(table(["engine", "decisions/s (median)", "µs/decision", "evaluate() rate ÷ this rate",
                 "agrees with us on V3 fixtures"], rows))
    for note in notes:
        print("\n" + note)


def _run_peer(decide, documents, passes) -> int:
    for _ in range(passes):
        for document in documents:
            decide(document)
    return passes * len(documents)


if __name__ == "__main__":
    main()
