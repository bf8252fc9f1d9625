"""The OpenAPI document and a page that shows it; both readable without a token."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from services.ingest.openapi import OPENAPI_PATH, document_bytes


async def openapi_document(request: web.Request) -> web.Response:
    return web.Response(body=document_bytes(), content_type="application/json")


async def docs_page(request: web.Request) -> web.Response:
    return web.Response(
        text=PAGE,
        content_type="text/html",
        # The page is self-contained: nothing is loaded from anywhere but this service.
        headers={
            "Content-Security-Policy": (
                "default-src 'none'; connect-src 'self'; "
                "script-src 'unsafe-inline'; style-src 'unsafe-inline'"
            )
        },
    )


# Self-contained on purpose (no CDN is reachable from every deployment): a little script fetches
# the document and lists each operation with its parameters, body and answers. Text is always
# set through textContent, so nothing in the document is read as HTML.
PAGE: Final = (
    """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Campaign Calls API</title>
<style>
  body { font: 15px/1.45 system-ui, sans-serif; color: #1d2330;
         margin: 0 auto; max-width: 68rem; padding: 1rem 2rem; }
  h1 { margin-bottom: .2rem; }
  h2 { border-bottom: 1px solid #ccd; padding-bottom: .2rem; margin-top: 2rem; }
  details.op { border: 1px solid #d5d9e2; border-radius: 6px; margin: .5rem 0;
               background: #fafbfd; }
  details.op > summary { cursor: pointer; padding: .45rem .7rem; }
  details.op[open] > summary { border-bottom: 1px solid #d5d9e2; }
  .body { padding: .3rem 1rem 1rem; }
  .method { display: inline-block; min-width: 4.2rem; font: 700 14px monospace; }
  .GET { color: #1864ab; } .POST { color: #2b8a3e; } .PUT { color: #e67700; }
  .PATCH { color: #862e9c; } .DELETE { color: #c92a2a; }
  .path { font-family: monospace; font-weight: 600; }
  .summary { color: #555; margin-left: .6rem; }
  table { border-collapse: collapse; margin: .3rem 0; }
  td, th { border: 1px solid #dde; padding: .2rem .5rem; text-align: left; vertical-align: top; }
  pre { background: #f1f3f7; padding: .6rem; overflow-x: auto; font-size: 13px; }
  a.ref { font-family: monospace; }
  .muted { color: #777; }
</style>
</head>
<body>
<h1 id="title">Campaign Calls API</h1>
<p class="muted">Rendered from <a id="source" href=""></a>.
  Authenticate with <code>Authorization: Bearer &lt;token&gt;</code>.</p>
<p id="intro"></p>
<div id="operations">Loading…</div>
<h2>Schemas</h2>
<div id="schemas"></div>
<script>
"use strict";
const SOURCE = "__OPENAPI_PATH__";

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function refLink(ref) {
  const name = ref.split("/").pop();
  return el("a", { class: "ref", href: "#schema-" + name, text: name });
}

function schemaSummary(schema) {
  if (!schema) return el("span", { class: "muted", text: "none" });
  if (schema.$ref) return refLink(schema.$ref);
  const parts = schema.anyOf || schema.oneOf;
  if (parts) {
    const span = el("span");
    parts.forEach((part, i) => {
      if (i) span.append(" | ");
      span.append(schemaSummary(part));
    });
    return span;
  }
  return el("code", { text: JSON.stringify(schema) });
}

function table(headings, rows) {
  const result = el("table", {}, el("tr", {}, ...headings.map((h) => el("th", { text: h }))));
  for (const cells of rows) {
    const row = el("tr");
    for (const cell of cells) {
      row.append(typeof cell === "string" ? el("td", { text: cell }) : el("td", {}, cell));
    }
    result.append(row);
  }
  return result;
}

function jsonSchemaOf(content) {
  return ((content || {})["application/json"] || {}).schema;
}

function operationBlock(method, path, op) {
  const upper = method.toUpperCase();
  const body = el("div", { class: "body" });
  if (op.description) body.append(el("p", { text: op.description }));
  if (op.parameters && op.parameters.length) {
    const rows = op.parameters.map((p) => [
      el("code", { text: p.name }), p.in, p.required ? "yes" : "no",
      schemaSummary(p.schema), p.description || "",
    ]);
    body.append(el("h4", { text: "Parameters" }),
      table(["name", "in", "required", "schema", "description"], rows));
  }
  if (op.requestBody) {
    body.append(el("h4", { text: "Body (application/json)" }),
      el("p", {}, schemaSummary(jsonSchemaOf(op.requestBody.content))));
  }
  const answers = Object.entries(op.responses || {}).map(([status, answer]) => [
    status, schemaSummary(jsonSchemaOf(answer.content)), answer.description || "",
  ]);
  body.append(el("h4", { text: "Responses" }), table(["status", "body", "meaning"], answers));
  const heading = el("summary", {},
    el("span", { class: "method " + upper, text: upper }),
    el("span", { class: "path", text: path }),
    el("span", { class: "summary", text: op.summary || "" }));
  return el("details", { class: "op", id: "op-" + (op.operationId || upper + path) },
    heading, body);
}

function render(doc) {
  const info = doc.info || {};
  const base = ((doc.servers || [])[0] || {}).url || "";
  document.getElementById("title").textContent = info.title || "API";
  document.getElementById("intro").textContent = info.description || "";
  const byTag = new Map();
  for (const [path, item] of Object.entries(doc.paths || {})) {
    for (const [method, op] of Object.entries(item)) {
      const tag = (op.tags || ["Other"])[0];
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push(operationBlock(method, base + path, op));
    }
  }
  const operations = document.getElementById("operations");
  operations.textContent = "";
  for (const [tag, blocks] of byTag) operations.append(el("h2", { text: tag }), ...blocks);
  const schemas = document.getElementById("schemas");
  for (const [name, schema] of Object.entries((doc.components || {}).schemas || {})) {
    schemas.append(el("h3", { id: "schema-" + name, text: name }),
      el("pre", { text: JSON.stringify(schema, null, 2) }));
  }
  const target = location.hash && document.getElementById(location.hash.slice(1));
  if (target) target.scrollIntoView();
}

const source = document.getElementById("source");
source.href = SOURCE;
source.textContent = SOURCE;
fetch(SOURCE)
  .then((response) => {
    if (!response.ok) throw new Error("HTTP " + response.status);
    return response.json();
  })
  .then(render)
  .catch((error) => {
    document.getElementById("operations").textContent =
      "Could not load " + SOURCE + ": " + error.message;
  });
</script>
</body>
</html>
"""
).replace("__OPENAPI_PATH__", OPENAPI_PATH)
