"use strict";
// The QA dashboard: a client of the admin API that follows /__admin/events instead of polling.
// Everything it shows comes from /__admin/{sessions,scenarios,clock,jobs,journal}; every action
// goes through the routes a test would use.

(() => {
  const MAX_EXCHANGES = 200;
  const MAX_JOURNAL_ROWS = 300;
  const FAILURE_TEXTS = {
    fansly: "Media processing failed: the file could not be transcoded.",
    onlyfans: "Failed to download file from the provided URL.",
  };

  // What the browser test reads: the last admin exchanges, validated against specs/admin.yaml.
  const exposed = { exchanges: [], renders: 0, events: 0 };
  window.mockUi = exposed;

  const params = new URLSearchParams(location.search);
  const token = params.get("token") || sessionStorage.getItem("mock-admin-token") || "";
  if (params.has("token")) {
    // Kept for this tab only, and taken out of the address bar so it is not copied along.
    sessionStorage.setItem("mock-admin-token", token);
    params.delete("token");
    const rest = params.toString();
    history.replaceState(null, "", location.pathname + (rest ? "?" + rest : "") + location.hash);
  }

  const view = {
    session: new URLSearchParams(location.hash.slice(1)).get("session") || "default",
    clock: null, // { unix_ms, manual, at: performance.now() when read }
    jobs: [],
    selected: null, // "provider/id"
    sessions: [],
    scenarios: [],
  };

  const $ = (id) => document.getElementById(id);

  // Builds an element: h("td", {class: "x"}, "text", child).
  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === false || value === null || value === undefined) continue;
      if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else if (name === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  // --- The admin API ---------------------------------------------------------------------------

  async function api(method, path, { body, session } = {}) {
    const headers = {};
    if (token) headers.Authorization = "Bearer " + token;
    if (session) headers["X-Mock-Session"] = session;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
    const text = await response.text();
    let json = null;
    try { json = JSON.parse(text); } catch (_) { /* reported below */ }
    exposed.exchanges.push({
      method, path, status: response.status,
      contentType: response.headers.get("content-type") || "", body: json,
    });
    if (exposed.exchanges.length > MAX_EXCHANGES) exposed.exchanges.shift();
    if (!response.ok) {
      const message = json && json.error ? json.error.message : text || response.statusText;
      throw new Error(`${method} ${path}: ${response.status} ${message}`);
    }
    return json;
  }

  const q = (value) => encodeURIComponent(value);

  function say(text, isBad) {
    const node = $("message");
    node.textContent = text;
    node.className = "message shown" + (isBad ? " bad" : "");
    clearTimeout(say.timer);
    say.timer = setTimeout(() => { node.className = "message"; }, isBad ? 6000 : 2500);
  }

  async function attempt(action, done) {
    try {
      await action();
      if (done) say(done);
    } catch (err) {
      say(err.message, true);
    }
  }

  // --- Time and sizes -------------------------------------------------------------------------

  // The mock's clock for this session, now: a manual clock stands still between events.
  function mockNow() {
    if (!view.clock) return Date.now();
    if (view.clock.manual) return view.clock.unix_ms;
    return view.clock.unix_ms + (performance.now() - view.clock.at);
  }

  function isoTime(ms) {
    return new Date(ms).toISOString().replace("T", " ").replace("Z", " UTC");
  }

  function shortTime(iso) {
    return iso ? iso.slice(11, 23) : "";
  }

  function duration(ms) {
    const sign = ms < 0 ? "-" : "";
    let rest = Math.abs(Math.round(ms));
    if (rest < 1000) return sign + rest + " ms";
    const parts = [];
    for (const [unit, size] of [["d", 86400000], ["h", 3600000], ["min", 60000], ["s", 1000]]) {
      if (rest >= size) {
        parts.push(Math.floor(rest / size) + " " + unit);
        rest %= size;
      }
    }
    return sign + parts.slice(0, 3).join(" ");
  }

  function size(bytes) {
    if (bytes === null || bytes === undefined) return "";
    if (bytes < 1024) return bytes + " B";
    if (bytes < 1048576) return (bytes / 1024).toFixed(1) + " KiB";
    return (bytes / 1048576).toFixed(1) + " MiB";
  }

  // --- Reading --------------------------------------------------------------------------------

  async function loadSessions() {
    const [{ sessions }, { scenarios }] = await Promise.all([
      api("GET", "/__admin/sessions"),
      api("GET", "/__admin/scenarios"),
    ]);
    view.sessions = sessions;
    view.scenarios = scenarios;
    renderSessions();
  }

  async function loadClock() {
    const clock = await api("GET", "/__admin/clock", { session: view.session });
    view.clock = { unix_ms: clock.unix_ms, manual: clock.manual, at: performance.now() };
    renderClock();
  }

  async function loadJobs() {
    const { jobs } = await api("GET", "/__admin/jobs?session=" + q(view.session));
    // Newest first: by upload time, then by the order the store lists them.
    view.jobs = jobs
      .map((job, idx) => ({ job, idx }))
      .sort((a, b) => b.job.created_at.localeCompare(a.job.created_at) || b.idx - a.idx)
      .map(({ job }) => job);
    renderJobs();
    renderDetail();
    scheduleNextChange();
  }

  function journalQuery(extra) {
    const query = new URLSearchParams({ session: view.session, ...extra });
    for (const [key, value] of [...query]) if (!value) query.delete(key);
    return "/__admin/journal?" + query.toString();
  }

  async function loadJournal() {
    const { entries } = await api("GET", journalQuery({
      route: $("journal-route").value,
      job: $("journal-job").value,
      method: $("journal-method").value,
    }));
    renderJournal(entries);
  }

  async function loadWebhooks() {
    const { entries } = await api("GET", journalQuery({ route: "webhook" }));
    renderWebhooks(entries);
  }

  async function loadAll() {
    await Promise.all([loadSessions(), loadClock()]);
    await Promise.all([loadJobs(), loadJournal(), loadWebhooks()]);
  }

  // Coalesces bursts of events into one re-read per kind.
  const pending = new Set();
  function refresh(...kinds) {
    for (const kind of kinds) pending.add(kind);
    if (refresh.timer) return;
    refresh.timer = setTimeout(async () => {
      refresh.timer = null;
      const kinds = [...pending];
      pending.clear();
      const loaders = { sessions: loadSessions, clock: loadClock, jobs: loadJobs, journal: loadJournal, webhooks: loadWebhooks };
      try {
        if (kinds.includes("clock")) await loadClock();
        await Promise.all(kinds.filter((kind) => kind !== "clock").map((kind) => loaders[kind]()));
      } catch (err) {
        say(err.message, true);
      }
    }, 30);
  }

  // On a system clock, jobs move and links expire with no event: re-read at the next such moment.
  function scheduleNextChange() {
    clearTimeout(scheduleNextChange.timer);
    if (!view.clock || view.clock.manual) return;
    const now = mockNow();
    let next = Infinity;
    for (const job of view.jobs) {
      if (job.next_change_at) next = Math.min(next, Date.parse(job.next_change_at));
      for (const link of job.links) {
        if (link.cdn_status === 200 && link.expires_unix_ms) next = Math.min(next, link.expires_unix_ms + 1000);
      }
    }
    if (next !== Infinity) {
      scheduleNextChange.timer = setTimeout(() => refresh("clock", "jobs"), Math.max(50, next - now + 20));
    }
  }

  // --- Live -----------------------------------------------------------------------------------

  let source = null;
  function listen() {
    if (source) source.close();
    const query = new URLSearchParams({ session: view.session });
    if (token) query.set("token", token);
    source = new EventSource("/__admin/events?" + query.toString());
    const live = $("live");
    source.onopen = () => { live.textContent = "live"; live.className = "live on"; };
    source.onerror = () => { live.textContent = "reconnecting"; live.className = "live off"; };
    source.onmessage = (message) => {
      exposed.events += 1;
      let event;
      try { event = JSON.parse(message.data); } catch (_) { return; }
      switch (event.type) {
        case "hello":
        case "resync":
          refresh("sessions", "clock", "jobs", "journal", "webhooks");
          break;
        case "job_created":
        case "job_forgotten":
          refresh("jobs", "sessions");
          break;
        case "job_polled":
        case "job_changed":
        case "job_forced":
        case "job_pinned":
          refresh("jobs");
          break;
        case "clock_moved":
          refresh("clock", "jobs");
          break;
        case "scenario_set":
          refresh("sessions");
          break;
        case "session_reset":
          refresh("sessions", "clock", "jobs", "journal", "webhooks");
          break;
        case "journal_appended":
          refresh("journal");
          if (event.fault || event.route === "upload") refresh("jobs");
          if (event.route === "webhook") refresh("webhooks");
          break;
        case "webhook_attempted":
          refresh("webhooks");
          break;
        default:
          break;
      }
    };
  }

  // --- Rendering ------------------------------------------------------------------------------

  function renderSessions() {
    const select = $("session");
    const names = new Set(["default", view.session, ...view.sessions.map((session) => session.id)]);
    select.replaceChildren(...[...names].sort().map((name) => {
      const row = view.sessions.find((session) => session.id === name);
      const label = row ? `${name} (${row.n_jobs} job${row.n_jobs === 1 ? "" : "s"})` : name;
      return h("option", { value: name, selected: name === view.session }, label);
    }));
    const own = view.sessions.find((session) => session.id === view.session);
    const serverDefault = view.scenarios.find((scenario) => scenario.is_default);
    const current = (own && own.scenario) || (serverDefault && serverDefault.name) || "happy";
    $("scenario").replaceChildren(...view.scenarios.map((scenario) =>
      h("option", { value: scenario.name, selected: scenario.name === current, title: scenario.description },
        scenario.name + (own && own.scenario === scenario.name ? " (session)" : scenario.is_default ? " (server default)" : ""))));
  }

  function renderClock() {
    $("clock-now").textContent = isoTime(mockNow());
    $("clock-kind").textContent = view.clock && view.clock.manual ? "manual" : "system";
    const own = view.sessions.find((session) => session.id === view.session);
    $("clock-kind").title = own && own.clock_offset_ms
      ? `this session is ${duration(own.clock_offset_ms)} ahead of the server clock` : "";
  }

  function jobKey(job) {
    return job.provider + "/" + job.id;
  }

  function timeline(job) {
    const bar = h("div", { class: "timeline", role: "img" });
    const steps = job.timeline.steps;
    const timed = steps.map((step) => step.until_elapsed_ms).filter((ms) => ms !== null);
    // A running job's bar spans its timeline up to now; an ended one's, its own length.
    const span = isTerminal(job) ? Math.max(...timed, 1) * 1.25 : Math.max(job.elapsed_ms, ...timed, 1) * 1.15;
    let start = 0;
    let open = 0;
    const segments = [];
    for (const step of steps) {
      if (step.until_elapsed_ms !== null) {
        segments.push({ cls: step.state, width: (step.until_elapsed_ms - start) / span * 100,
          title: `${step.state} ${step.progress}% until ${duration(step.until_elapsed_ms)}${step.until_polls !== null ? ` or ${step.until_polls} polls` : ""}` });
        start = step.until_elapsed_ms;
      } else {
        open += 1;
        segments.push({ cls: step.state + " open", width: null,
          title: step.until_polls !== null ? `${step.state} ${step.progress}% until ${step.until_polls} polls` : `${step.state} ${step.progress}%, pinned` });
      }
    }
    const outcome = typeof job.timeline.outcome === "string" ? "completed" : "failed";
    const used = segments.reduce((sum, seg) => sum + (seg.width || 0), 0);
    const free = Math.max(100 - used, 8);
    for (const seg of segments) {
      const node = h("div", { class: "seg " + seg.cls, title: seg.title });
      node.style.width = (seg.width === null ? free / (open + 1) : seg.width) + "%";
      node.style.flex = "none";
      bar.append(node);
    }
    const end = h("div", { class: "seg " + outcome, title: "then " + outcome });
    end.style.flex = "1";
    bar.append(end);
    const marker = h("div", { class: "now", title: "now: " + duration(job.elapsed_ms) + " after the upload" });
    marker.style.left = (isTerminal(job) ? 99.5 : Math.min(job.elapsed_ms / span * 100, 99.5)) + "%";
    bar.append(marker);
    let next;
    const nextNode = h("div", { class: "next" });
    if (isTerminal(job)) {
      next = job.state + (job.finished_at ? " at " + shortTime(job.finished_at) : "");
    } else if (job.next_change_at) {
      nextNode.dataset.nextAt = String(Date.parse(job.next_change_at));
      nextNode.dataset.polls = job.next_change_polls === null ? "" : String(job.next_change_polls);
      next = nextText(nextNode);
    } else if (job.next_change_polls !== null) {
      next = `next at poll ${job.next_change_polls} (${job.n_polls} so far)`;
    } else {
      next = "pinned until forced";
    }
    bar.setAttribute("aria-label", `timeline: ${job.state}, ${next}`);
    nextNode.textContent = next;
    return h("div", {}, bar, nextNode);
  }

  // "next in 1.5 s (18:35:03.000)", counted on the mock's clock.
  function nextText(node) {
    const at = Number(node.dataset.nextAt);
    let text = `next in ${duration(Math.max(at - mockNow(), 0))} (${shortTime(new Date(at).toISOString())})`;
    if (node.dataset.polls) text += ` or at poll ${node.dataset.polls}`;
    return text;
  }

  function countdownText(node) {
    const left = Number(node.dataset.expires) - mockNow();
    return left > 0 ? `expires in ${duration(left)}` : `expired ${duration(-left)} ago`;
  }

  // Keeps keyboard focus on the same control across a re-render.
  function focusKey() {
    const active = document.activeElement;
    if (!active || active === document.body) return null;
    const row = active.closest("[data-job]");
    return { id: active.id, job: row && row.dataset.job, cls: active.className };
  }

  function refocus(key) {
    if (!key) return;
    let target = key.id ? document.getElementById(key.id) : null;
    if (!target && key.job && key.cls) {
      const row = [...document.querySelectorAll("[data-job]")].find((node) => node.dataset.job === key.job);
      target = row && row.querySelector("." + key.cls.split(" ")[0]);
    }
    if (target && target !== document.activeElement) target.focus();
  }

  function isTerminal(job) {
    return job.state === "completed" || job.state === "failed";
  }

  async function force(job, body, done) {
    await attempt(async () => {
      await api("POST", `/__admin/jobs/${job.provider}/${q(job.id)}`, { body, session: view.session });
      await loadJobs();
    }, done);
  }

  function renderJobs() {
    exposed.renders += 1;
    const focused = focusKey();
    const rows = view.jobs.map((job) => {
      const key = jobKey(job);
      const terminal = isTerminal(job);
      const dims = job.width ? ` · ${job.width}×${job.height}` : "";
      const row = h("tr", {
        class: "job" + (view.selected === key ? " selected" : ""),
        dataset: { job: key, state: job.state },
        onclick: (event) => { if (!event.target.closest("button")) select(key); },
      },
        h("td", {},
          h("div", { class: "mono", title: job.id }, h("span", { class: "muted" }, job.provider), " ",
            h("strong", {}, job.id.length > 12 ? job.id.slice(0, 12) + "…" : job.id)),
          h("div", { class: "small muted" }, job.account, " · ", job.n_polls + " poll" + (job.n_polls === 1 ? "" : "s")),
          job.repeat_of !== null ? h("div", { class: "repeat", title: "the same bytes were uploaded before" }, "↻ retry of #" + job.repeat_of) : null),
        h("td", {},
          h("div", {}, job.file_name || h("span", { class: "muted" }, "no file")),
          h("div", { class: "small muted" }, [size(job.size), job.mimetype ? " · " + job.mimetype : "", dims].join(""))),
        h("td", { class: "small" }, job.scenario),
        h("td", {},
          h("span", { class: "state " + job.state }, job.state),
          " ", h("span", { class: "small muted progress" }, job.progress + "%"),
          job.error ? h("div", { class: "error" }, job.error) : null,
          job.faults.length ? h("div", {}, job.faults.map((fault) =>
            h("span", { class: "fault", title: `journal #${fault.seq}: ${fault.route} answered ${fault.status}` }, fault.fault))) : null),
        h("td", {}, timeline(job)),
        h("td", { class: "actions" },
          h("button", { type: "button", class: "complete", disabled: terminal,
            "aria-label": `Force ${job.provider} job ${job.id} completed`, title: terminal ? "a terminal job never changes" : "end it now as completed",
            onclick: () => force(job, { outcome: "completed" }, `job ${job.id} completed`) }, "Complete"),
          h("button", { type: "button", class: "fail", disabled: terminal,
            "aria-label": `Force ${job.provider} job ${job.id} failed`, title: terminal ? "a terminal job never changes" : "end it now as failed, with the provider's error text",
            onclick: () => force(job, { outcome: { failed: FAILURE_TEXTS[job.provider] } }, `job ${job.id} failed`) }, "Fail"),
          h("button", { type: "button", class: "show", "aria-label": `Show ${job.provider} job ${job.id}`, onclick: () => select(key) }, "Show")));
      return row;
    });
    $("jobs").tBodies[0].replaceChildren(...rows);
    $("jobs-count").textContent = `(${view.jobs.length})`;
    $("jobs-empty").hidden = view.jobs.length > 0;
    const jobSelect = $("journal-job");
    const chosen = jobSelect.value;
    // Rebuilt only when the jobs change: a rebuild would close the list under the user's pointer.
    const ids = view.jobs.map(jobKey).join(" ");
    if (jobSelect.dataset.ids === ids) {
      refocus(focused);
      return;
    }
    jobSelect.dataset.ids = ids;
    jobSelect.replaceChildren(h("option", { value: "" }, "all"), ...view.jobs.map((job) =>
      h("option", { value: job.id, selected: job.id === chosen }, `${job.provider} ${job.id.length > 12 ? job.id.slice(0, 12) + "…" : job.id}`)));
    if (chosen && !view.jobs.some((job) => job.id === chosen)) {
      jobSelect.append(h("option", { value: chosen, selected: true }, chosen));
    }
    refocus(focused);
  }

  function select(key) {
    view.selected = key;
    for (const row of $("jobs").tBodies[0].rows) row.classList.toggle("selected", row.dataset.job === key);
    renderDetail();
  }

  // Preview images, kept across renders so a re-render does not fetch them again.
  const previews = new Map();
  function preview(job, link) {
    if (!/^image\//.test(job.mimetype || "") || !/\.(jpe?g|png|gif|webp)\?/.test(link.url)) {
      return h("div", { class: "noimg" }, job.mimetype || "file");
    }
    if (!previews.has(link.url)) {
      previews.set(link.url, h("img", { src: link.url, alt: `preview of ${job.file_name}`, loading: "lazy" }));
    }
    return previews.get(link.url);
  }

  function renderDetail() {
    const detail = $("detail");
    const job = view.jobs.find((candidate) => jobKey(candidate) === view.selected);
    if (!job) {
      detail.replaceChildren(h("p", { class: "empty" }, "Select a job to see its links, faults and controls."));
      detail.dataset.job = "";
      return;
    }
    const terminal = isTerminal(job);
    // What the user was typing survives the re-render an event causes.
    const kept = detail.dataset.job === jobKey(job)
      ? { fail: $("fail-text") && $("fail-text").value, state: $("pin-state") && $("pin-state").value, progress: $("pin-progress") && $("pin-progress").value }
      : {};
    const focused = focusKey();
    const facts = h("dl", { class: "facts" },
      h("dt", {}, "Job"), h("dd", { class: "mono" }, `${job.provider} ${job.id}`),
      h("dt", {}, "State"), h("dd", {}, h("span", { class: "state " + job.state }, job.state), ` ${job.progress}%`, job.error ? h("div", { class: "error" }, job.error) : null),
      h("dt", {}, "Uploaded"), h("dd", {}, isoTime(Date.parse(job.created_at))),
      h("dt", {}, "SHA-256"), h("dd", { class: "mono small" }, job.sha256 || ""),
      h("dt", {}, "Faults"), h("dd", {}, job.faults.length ? job.faults.map((fault) => h("span", { class: "fault" }, `${fault.fault} (#${fault.seq}, ${fault.route} ${fault.status})`)) : "none"),
      job.repeat_of !== null ? [h("dt", {}, "Retry"), h("dd", { class: "repeat" }, `same bytes as journal #${job.repeat_of}`)] : null);

    const failText = h("input", { id: "fail-text", value: kept.fail || FAILURE_TEXTS[job.provider], list: "failure-texts", disabled: terminal });
    const pinState = h("select", { id: "pin-state", disabled: terminal }, h("option", {}, "queued"), h("option", { selected: true }, "processing"));
    if (kept.state) pinState.value = kept.state;
    const pinProgress = h("input", { id: "pin-progress", type: "number", min: 0, max: 100, value: kept.progress || 50, disabled: terminal });
    const controls = h("div", {},
      h("form", { class: "row", onsubmit: (event) => { event.preventDefault(); force(job, { outcome: { failed: failText.value } }, `job ${job.id} failed`); } },
        h("label", { for: "fail-text" }, "Error text"), failText,
        h("datalist", { id: "failure-texts" }, Object.values(FAILURE_TEXTS).map((text) => h("option", { value: text }))),
        h("button", { type: "submit", disabled: terminal }, "Fail with this text")),
      h("form", { class: "row", onsubmit: (event) => { event.preventDefault(); force(job, { state: pinState.value, progress: Number(pinProgress.value) }, `job ${job.id} pinned`); } },
        h("label", { for: "pin-state" }, "Pin in"), pinState,
        h("label", { for: "pin-progress" }, "at %"), pinProgress,
        h("button", { type: "submit", disabled: terminal }, "Pin")),
      h("div", { class: "row" },
        h("button", { type: "button", onclick: () => { $("journal-job").value = job.id; loadJournal().catch((err) => say(err.message, true)); } }, "Show its requests in the journal")),
      terminal ? h("p", { class: "small muted" }, "A terminal job never changes: the API refuses to force or pin it.") : null);

    const links = job.links.length
      ? h("ul", { class: "links", "aria-label": "CDN links" }, job.links.map((link) => {
        const ok = link.cdn_status === 200;
        const countdown = h("span", { class: "countdown" }, "no expiry");
        if (link.expires_unix_ms !== null) {
          countdown.dataset.expires = String(link.expires_unix_ms);
          countdown.textContent = countdownText(countdown);
        }
        return h("li", { dataset: { link: link.field, cdnStatus: String(link.cdn_status) } },
          preview(job, link),
          h("div", {},
            h("div", {},
              h("span", { class: "cdn-status " + (ok ? "ok" : "denied") }, String(link.cdn_status)),
              " ", ok ? "serves the bytes" : `refused: ${link.cdn_denied_reason}`,
              " · ", countdown),
            h("div", { class: "small muted" }, link.field, link.expires_at ? " · until " + shortTime(link.expires_at) : ""),
            h("a", { href: link.url, target: "_blank", rel: "noopener noreferrer", title: link.url },
              new URL(link.url).pathname + "?… (signed)")));
      }))
      : h("p", { class: "empty" }, job.state === "completed" ? "No links." : "Links appear once the job completes.");

    const linkSection = [h("h3", { class: "small" }, "Links"), links];
    // An ended job is about its links; a running one about what can still be done to it.
    detail.replaceChildren(facts, ...(terminal ? [linkSection, controls] : [controls, linkSection]).flat());
    detail.dataset.job = jobKey(job);
    refocus(focused);
  }

  function statusClass(status) {
    return "status-" + String(status).charAt(0);
  }

  function renderJournal(entries) {
    const rows = entries.slice(-MAX_JOURNAL_ROWS).reverse().map((entry) => {
      const headers = Object.entries(entry.headers).map(([name, value]) => `${name}: ${value}`).join("\n");
      const parts = entry.parts.map((part) => `${part.name}${part.file_name ? ` (${part.file_name})` : ""}: ${size(part.size)}`).join("\n");
      return h("tr", { dataset: { seq: String(entry.seq), job: entry.job_id || "" } },
        h("td", { class: "mono" }, entry.seq),
        h("td", { class: "mono small" }, shortTime(entry.at)),
        h("td", { class: "mono small" }, h("strong", {}, entry.method), " ", entry.path,
          entry.repeat_of !== null ? h("div", { class: "repeat" }, "↻ repeat of #" + entry.repeat_of) : null),
        h("td", { class: "mono " + statusClass(entry.status) }, entry.status,
          entry.retry_after !== null ? h("div", { class: "small muted" }, `Retry-After ${entry.retry_after}`) : null),
        h("td", { class: "mono small" }, entry.duration_ms.toFixed(1)),
        h("td", { class: "mono small" }, entry.job_id ? (entry.job_id.length > 14 ? entry.job_id.slice(0, 14) + "…" : entry.job_id) : "",
          entry.state ? h("div", { class: "muted" }, entry.state) : null),
        h("td", { class: "small" }, entry.scenario || "", entry.fault ? h("div", {}, h("span", { class: "fault" }, entry.fault)) : null),
        h("td", {}, h("details", {},
          h("summary", {}, `${Object.keys(entry.headers).length} headers${entry.parts.length ? `, ${entry.parts.length} parts` : ""}`),
          h("pre", {}, headers),
          parts ? h("pre", {}, parts) : null)));
    });
    $("journal").tBodies[0].replaceChildren(...rows);
    $("journal-count").textContent = `(${entries.length})`;
  }

  function renderWebhooks(entries) {
    const rows = entries.slice().reverse().map((entry) => {
      const delivery = entry.delivery || { attempt: 1, max_attempts: 1, next_retry_at: null };
      return h("tr", { dataset: { seq: String(entry.seq) } },
        h("td", { class: "mono" }, entry.seq),
        h("td", { class: "mono small", title: entry.job_id || "" }, entry.job_id ? entry.job_id.slice(0, 16) + "…" : ""),
        h("td", {}, `${delivery.attempt} of ${delivery.max_attempts}`, entry.fault ? h("div", {}, h("span", { class: "fault" }, entry.fault)) : null),
        h("td", { class: "mono " + statusClass(entry.status) }, entry.status === 0 ? "none" : entry.status),
        h("td", { class: "mono small", title: entry.headers.signature || "no signing secret" }, entry.headers.signature ? entry.headers.signature.slice(0, 12) + "…" : "unsigned"),
        h("td", { class: "small" }, delivery.next_retry_at ? shortTime(delivery.next_retry_at) : "—"));
    });
    $("webhooks").tBodies[0].replaceChildren(...rows);
    $("webhooks-count").textContent = `(${entries.length})`;
    $("webhooks-empty").hidden = entries.length > 0;
  }

  // --- Acting ---------------------------------------------------------------------------------

  function clockSession() {
    return $("clock-all").checked ? undefined : view.session;
  }

  async function advance(by) {
    await attempt(async () => {
      await api("POST", "/__admin/clock/advance", { body: { by }, session: clockSession() });
      // The clock_moved event follows; reading now makes the view follow at once.
      await loadClock();
      await loadJobs();
    }, `clock advanced by ${by}`);
  }

  for (const button of document.querySelectorAll("[data-advance]")) {
    button.addEventListener("click", () => advance(button.dataset.advance));
  }
  $("advance-form").addEventListener("submit", (event) => {
    event.preventDefault();
    advance($("advance-by").value.trim());
  });
  $("set-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const at = $("set-at").value.trim();
    attempt(async () => {
      await api("POST", "/__admin/clock/set", { body: { at }, session: clockSession() });
      await loadClock();
      await loadJobs();
    }, `clock set to ${at}`);
  });
  $("session").addEventListener("change", () => {
    view.session = $("session").value;
    view.selected = null;
    location.hash = "session=" + q(view.session);
    listen();
    loadAll().catch((err) => say(err.message, true));
  });
  $("session-reset").addEventListener("click", () => {
    if (!confirm(`Forget session "${view.session}": its jobs, files, clock offset and journal?`)) return;
    attempt(async () => {
      await api("DELETE", "/__admin/sessions/" + q(view.session));
      await loadAll();
    }, `session ${view.session} reset`);
  });
  $("scenario-set").addEventListener("click", () => {
    const name = $("scenario").value;
    attempt(async () => {
      await api("PUT", "/__admin/scenario", { body: { name }, session: view.session });
      await loadSessions();
    }, `${view.session} now defaults to ${name}`);
  });
  for (const id of ["journal-route", "journal-job", "journal-method"]) {
    $(id).addEventListener("change", () => loadJournal().catch((err) => say(err.message, true)));
  }
  $("journal-clear-filter").addEventListener("click", () => {
    for (const id of ["journal-route", "journal-job", "journal-method"]) $(id).value = "";
    loadJournal().catch((err) => say(err.message, true));
  });

  // A system clock moves on its own: the clock and countdowns follow locally, once a second.
  setInterval(() => {
    if (!view.clock || view.clock.manual) return;
    renderClock();
    for (const node of document.querySelectorAll("[data-expires]")) node.textContent = countdownText(node);
    for (const node of document.querySelectorAll("[data-next-at]")) node.textContent = nextText(node);
  }, 1000);

  listen();
  loadAll().catch((err) => say(err.message, true));
})();
