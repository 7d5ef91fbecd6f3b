//! The OpenAPI document of the admin API, built from the same table the router is tested
//! against (`tests/api.rs` calls every endpoint listed here and checks that nothing else
//! answers), so the two cannot drift apart.

use serde_json::{json, Map, Value};

/// One endpoint: method, path (OpenAPI template syntax), summary, whether it changes
/// something (and so needs the bearer token), and its JSON body fields (name, type,
/// required).
pub struct Endpoint {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    pub mutation: bool,
    pub body: &'static [(&'static str, &'static str, bool)],
}

pub const ENDPOINTS: &[Endpoint] = &[
    Endpoint { method: "get", path: "/healthz", summary: "Liveness: the admin listener answers", mutation: false, body: &[] },
    Endpoint { method: "get", path: "/readyz", summary: "Readiness: 200 while the gateway serves, also without its store (it serves its last routes); the body says whether the store answers (store: ok or unavailable, with the reason)", mutation: false, body: &[] },
    Endpoint { method: "get", path: "/metrics", summary: "Prometheus metrics (OpenMetrics text)", mutation: false, body: &[] },
    Endpoint { method: "get", path: "/api/v1/openapi.json", summary: "This document", mutation: false, body: &[] },
    Endpoint { method: "get", path: "/api/v1/routes", summary: "Every route in match order with its stage, weight, file state and live numbers per side", mutation: false, body: &[] },
    Endpoint { method: "get", path: "/api/v1/routes/{name}", summary: "One route with per-second series per side (query: seconds, at most 900) and its events", mutation: false, body: &[] },
    Endpoint { method: "post", path: "/api/v1/routes/{name}/set", summary: "Set the route's stage and/or weight at runtime (an override of the file)", mutation: true, body: &[("stage", "string", false), ("weight", "number", false), ("message", "string", true)] },
    Endpoint { method: "post", path: "/api/v1/routes/{name}/rollback", summary: "Send the route back to legacy (stage legacy, weight 0), effective for the next request", mutation: true, body: &[("message", "string", true)] },
    Endpoint { method: "post", path: "/api/v1/rollback", summary: "Send every route that uses modern back to legacy", mutation: true, body: &[("message", "string", true)] },
    Endpoint { method: "get", path: "/api/v1/config", summary: "The running config version, its text and the runtime overrides", mutation: false, body: &[] },
    Endpoint { method: "get", path: "/api/v1/config/versions", summary: "Config versions, newest first (query: limit, before)", mutation: false, body: &[] },
    Endpoint { method: "get", path: "/api/v1/config/versions/{number}", summary: "One config version with its full text", mutation: false, body: &[] },
    Endpoint { method: "get", path: "/api/v1/config/versions/{number}/diff", summary: "What a version changed from the one before: route-level changes and a line diff", mutation: false, body: &[] },
    Endpoint { method: "post", path: "/api/v1/config/plan", summary: "The route-level changes a config text would make to what runs; errors name the text origin (the caller's file name, default: the gateway's config file) in FILE:line:col", mutation: false, body: &[("text", "string", true), ("origin", "string", false)] },
    Endpoint { method: "post", path: "/api/v1/config/apply", summary: "Apply a config text as the next version (409 when expected_version is not the running one); errors name the text origin (the caller's file name, default: the gateway's config file) in FILE:line:col", mutation: true, body: &[("text", "string", true), ("origin", "string", false), ("message", "string", true), ("expected_version", "integer", false)] },
    Endpoint { method: "post", path: "/api/v1/config/revert", summary: "Apply an older version's text as the next version, clearing runtime overrides", mutation: true, body: &[("version", "integer", true), ("message", "string", true), ("expected_version", "integer", false)] },
    Endpoint { method: "get", path: "/api/v1/inventory", summary: "Every endpoint seen (method + path template, ids folded to {id}), its route, counts per side, last seen; legacy_only flags endpoints not yet moved", mutation: false, body: &[] },
    Endpoint { method: "get", path: "/api/v1/verify", summary: "Every [[verify]] job with its route, tables and latest run: outcome (equal, different, lagging, error), counts, finished_at, error", mutation: false, body: &[] },
    Endpoint { method: "get", path: "/api/v1/verify/{job}", summary: "One [[verify]] job's recent runs, newest first, with their reports (query: limit, at most 100)", mutation: false, body: &[] },
    Endpoint { method: "get", path: "/api/v1/diffs", summary: "Shadow comparisons per route (query: route): mirror counters (mirrored, dropped by reason, failed, compared) and endpoints and field paths ranked by difference rate, noise shown apart", mutation: false, body: &[] },
    Endpoint { method: "get", path: "/api/v1/diffs/samples/{id}", summary: "One sample exchange: the request and both responses (sensitive headers redacted) with their differences", mutation: false, body: &[] },
    Endpoint { method: "post", path: "/api/v1/diffs/{route}/reset", summary: "Forget a route's comparisons and samples (an event)", mutation: true, body: &[("message", "string", true)] },
    Endpoint { method: "post", path: "/api/v1/cache/{route}/purge", summary: "Forget a route's cached responses, or one path's (path: as clients send it, with the query); an event", mutation: true, body: &[("path", "string", false), ("message", "string", true)] },
    Endpoint { method: "get", path: "/api/v1/rollouts", summary: "Every route with [route.rollout]: status (running, paused, waiting, soaking, completed, rolled_back, aborted), step, weight, time in the step and the last verdict with every gate's numbers", mutation: false, body: &[] },
    Endpoint { method: "get", path: "/api/v1/slo", summary: "Every SLO: its spec, and the leader's latest evaluation (SLI over the window and the last 5 minutes, budget remaining, burn rate per window, time to exhaustion, each burn-rate rule, page and ticket alerts)", mutation: false, body: &[] },
    Endpoint { method: "get", path: "/api/v1/slo/{route}", summary: "A route's SLOs with the budget remaining hour by hour over the window, compliance of past calendar months, and its slo.firing / slo.resolved events", mutation: false, body: &[] },
    Endpoint { method: "get", path: "/api/v1/slo-rules", summary: "A Prometheus rule file (YAML, Sloth-compatible names) for every configured SLO, for teams that alert from Prometheus", mutation: false, body: &[] },
    Endpoint { method: "get", path: "/api/v1/flags", summary: "Every [[flag]] as it runs: key, enabled, kind, variants, default, number of rules, its runtime override, this node's evaluations (served over OFREP by [ofrep])", mutation: false, body: &[] },
    Endpoint { method: "get", path: "/api/v1/flags/{key}", summary: "One flag's whole definition as it runs: variants with their values, rules, metadata; its runtime override and the file's definition when one is set; this node's evaluations by variant and reason (404 for an unknown key)", mutation: false, body: &[] },
    Endpoint { method: "post", path: "/api/v1/flags/{key}/set", summary: "Override the flag at runtime on every node: variant (everyone gets it, the rules are set aside: the kill switch) and/or enabled", mutation: true, body: &[("variant", "string", false), ("enabled", "boolean", false), ("message", "string", true)] },
    Endpoint { method: "post", path: "/api/v1/flags/{key}/reset", summary: "Drop the flag's runtime override: it follows the config file again", mutation: true, body: &[("message", "string", true)] },
    Endpoint { method: "get", path: "/api/v1/record", summary: "This node's recordings: each route that records or recorded, its state (recording, ended, stopped, off), source (config or runtime), settings and counts (requests = recorded + sampled out + dropped by reason + in progress), bytes and files", mutation: false, body: &[] },
    Endpoint { method: "post", path: "/api/v1/record/{route}/start", summary: "Start recording the route on every node (a record.started event): sample (percent, default 100), for (a duration; default until stopped), max_size (per node)", mutation: true, body: &[("sample", "number", false), ("for", "string", false), ("max_size", "string", false), ("message", "string", true)] },
    Endpoint { method: "post", path: "/api/v1/record/{route}/stop", summary: "Stop recording the route on every node (a record.stopped event), whatever [route.record] says, until started again", mutation: true, body: &[("message", "string", true)] },
    Endpoint { method: "get", path: "/api/v1/replays", summary: "Replay runs kept with ficus replay --save, newest first: id, when, who, recording, target, reference (recording or compare-with), requests sent, fields found really different", mutation: false, body: &[] },
    Endpoint { method: "post", path: "/api/v1/replays", summary: "Keep a replay run's report (what ficus replay --save sends)", mutation: true, body: &[("file", "string", true), ("target", "string", true), ("reference", "string", true), ("report", "object", true)] },
    Endpoint { method: "get", path: "/api/v1/replays/{id}", summary: "One replay run with its whole report: counts, latency, lateness, and the comparison's fields ranked by rate with their noise verdicts", mutation: false, body: &[] },
    Endpoint { method: "get", path: "/api/v1/migrations", summary: "Every [[migration]] plan: status (running, waiting, paused, blocked, completed), the current step and whether its action began, each step with its action and way back, the latest gate's checks (the leader's live evaluation, else the latest recorded) and the throttle", mutation: false, body: &[] },
    Endpoint { method: "get", path: "/api/v1/migrations/{name}", summary: "One migration plan as in the list, with its timeline: its migration.* events, newest first, each carrying the plan's state, the gate's checks and a command's output", mutation: false, body: &[] },
    Endpoint { method: "post", path: "/api/v1/migrations/{name}/{command}", summary: "A migration command: advance (start a waiting step, or try a blocked one again), pause, resume or back (take the latest started step's way back); sent to the leader when this node does not lead; answers the events recorded", mutation: true, body: &[("message", "string", true)] },
    Endpoint { method: "post", path: "/api/v1/rollouts/{route}/{command}", summary: "A rollout command: pause, resume, promote (past a manual gate, or now), abort (back to on_rollback) or start (again from the first step); answers the events it recorded", mutation: true, body: &[("message", "string", true)] },
    Endpoint { method: "get", path: "/api/v1/fleet", summary: "Every node sharing the store: state (up, down, stopped), revision applied and skew, commit-to-apply lag, rate, drift; the leader and its lease; this node's listener, store and telemetry exchange", mutation: false, body: &[] },
    Endpoint { method: "get", path: "/api/v1/events", summary: "The audit log (query: route, kind, kind_prefix, after, before, limit); newest first (before an id: the next page back), or oldest first after an id", mutation: false, body: &[] },
];

/// The OpenAPI 3.1 document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for e in ENDPOINTS {
        let mut op = json!({
            "summary": e.summary,
            "operationId": format!("{}{}", e.method, e.path.replace(['/', '{', '}', '.'], "_")),
            "responses": {
                "200": {"description": "OK"},
                "400": {"description": "Bad request: application/problem+json naming the field"},
            },
        });
        let params: Vec<Value> = e
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .map(|p| json!({"name": p, "in": "path", "required": true, "schema": {"type": if p == "number" {"integer"} else {"string"}}}))
            .collect();
        if !params.is_empty() {
            op["parameters"] = Value::Array(params);
        }
        if !e.body.is_empty() {
            let props: Map<String, Value> = e
                .body
                .iter()
                .map(|(n, t, _)| (n.to_string(), json!({"type": t})))
                .collect();
            let required: Vec<&str> = e
                .body
                .iter()
                .filter(|(_, _, r)| *r)
                .map(|(n, _, _)| *n)
                .collect();
            op["requestBody"] = json!({
                "required": true,
                "content": {"application/json": {"schema": {
                    "type": "object", "properties": props, "required": required, "additionalProperties": false
                }}}
            });
        }
        if e.mutation {
            op["security"] = json!([{"bearer": []}]);
            op["responses"]["401"] = json!({"description": "Missing or wrong bearer token"});
            op["responses"]["409"] =
                json!({"description": "Version conflict, or a change that needs a restart"});
            op["responses"]["503"] =
                json!({"description": "The state store is unavailable; nothing changed"});
        }
        paths
            .entry(e.path.to_string())
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("path items are objects")
            .insert(e.method.to_string(), op);
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "ficus admin API", "version": env!("CARGO_PKG_VERSION")},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": paths,
    })
}
