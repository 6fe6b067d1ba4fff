// Node's own test runner against a running mock: `MOCK_URL=http://127.0.0.1:8765 node --test
// examples/node/`. Each test takes its own X-Mock-Session, so its jobs, clock and journal are its
// own, and moves that session's clock instead of sleeping.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { randomUUID } from "node:crypto";

const BASE = process.env.MOCK_URL ?? "http://127.0.0.1:8765";
const SAMPLE = new URL("../../fixtures/media/sample.jpg", import.meta.url);

function session() {
  const headers = { "x-api-key": "test", "x-mock-session": `node-${randomUUID()}` };
  const admin = (path, body) =>
    fetch(`${BASE}/__admin/${path}`, {
      method: "POST",
      headers: { ...headers, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  return { headers, advance: (by) => admin("clock/advance", { by }) };
}

async function upload(headers, extra = {}) {
  const form = new FormData();
  form.append("file", new Blob([await readFile(SAMPLE)], { type: "image/jpeg" }), "sample.jpg");
  const response = await fetch(`${BASE}/api/fansly/acct1/media/upload`, {
    method: "POST",
    headers: { ...headers, ...extra },
    body: form,
  });
  assert.equal(response.status, 201);
  return (await response.json()).data.jobId;
}

async function poll(headers, jobId) {
  const response = await fetch(`${BASE}/api/fansly/media/upload/${jobId}/status`, { headers });
  return { status: response.status, body: response.status === 200 ? await response.json() : null };
}

test("a job completes and its signed link serves the uploaded bytes", async () => {
  const { headers, advance } = session();
  const jobId = await upload(headers);
  assert.equal((await poll(headers, jobId)).body.data.state, "waiting");
  await advance("3s"); // this session's clock only: no sleeping
  const { body } = await poll(headers, jobId);
  assert.equal(body.data.state, "completed");
  const link = body.data.result.accountMedia[0].media.locations[0].location;
  const served = Buffer.from(await (await fetch(link)).arrayBuffer());
  assert.deepEqual(served, await readFile(SAMPLE));
  await advance("5h 1s"); // Fansly links live five hours
  assert.equal((await fetch(link)).status, 403);
});

test("rate-limited answers the 2nd poll with 429 and Retry-After", async () => {
  const { headers } = session();
  const jobId = await upload(headers, { "x-mock-scenario": "rate-limited" });
  assert.equal((await poll(headers, jobId)).status, 200);
  const limited = await fetch(`${BASE}/api/fansly/media/upload/${jobId}/status`, { headers });
  assert.equal(limited.status, 429);
  assert.equal(limited.headers.get("retry-after"), "2");
});
