--- The dashboard's HTML: a page that static/dashboard.js fills from
-- snapshot.json, so that it renders without any build step and every
-- server string reaches the DOM as text (textContent), never as markup.
-- The only server string in this HTML is the JobId, HTML-escaped here.
-- No inline script or style: the Content-Security-Policy (ota_dashboard)
-- allows only what nginx serves from /static/.
local gsub = string.gsub

local page = {}

local ESCAPES = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#39;" }

--- `s` safe in HTML text and in a quoted attribute value.
function page.escape(s)
  return (gsub(s, "[&<>\"']", ESCAPES))
end

local TEMPLATE = [[
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{JOB}} · OTA rollout</title>
<link rel="stylesheet" href="/static/dashboard.css">
<script src="/static/dashboard.js" defer></script>
</head>
<body data-job-id="{{JOB}}" data-state="loading">
<header class="top">
  <h1><span class="kicker">OTA rollout</span> <span id="job-id">{{JOB}}</span></h1>
  <p class="meta" id="meta">
    <span>Snapshot <time id="taken-at">–</time> <span id="age"></span></span>
    <span>listing took <span id="duration">–</span></span>
    <span>refreshed every <span id="interval">–</span></span>
    <span class="refreshing" id="refreshing" aria-hidden="true">refreshing…</span>
  </p>
</header>
<main>
  <p class="state" id="state" role="status" aria-live="polite">Loading…</p>
  <section class="error" id="error" role="alert" hidden>
    <h2 id="error-title">The listing failed</h2>
    <dl>
      <dt>Code</dt><dd class="code" id="error-code"></dd>
      <dt>Message</dt><dd class="message" id="error-message"></dd>
      <dt>RequestId</dt><dd class="request-id" id="error-request-id"></dd>
    </dl>
    <p class="note" id="error-note"></p>
  </section>
  <section class="panel" id="overview" hidden>
    <div class="totals">
      <div><span class="big" id="total">–</span> tasks</div>
      <div><span class="big" id="done">–</span> done</div>
      <div><span class="big" id="failed-total">–</span> failed</div>
    </div>
    <div class="stack" id="stack" aria-hidden="true"></div>
    <h2>By status</h2>
    <ul class="statuses" id="statuses"></ul>
  </section>
  <section class="panel" id="failures" hidden>
    <h2>Failures by reason <span class="sub" id="failures-sub"></span></h2>
    <div id="failure-groups"></div>
    <p class="note" id="failures-note"></p>
  </section>
  <section class="panel" id="in-progress" hidden>
    <h2>In progress <span class="sub" id="in-progress-sub"></span></h2>
    <table class="tasks">
      <thead><tr><th>Device</th><th>Progress</th><th>Modified (UTC)</th></tr></thead>
      <tbody id="in-progress-rows"></tbody>
    </table>
  </section>
</main>
<footer class="foot">
  JSON: <a href="snapshot.json">snapshot</a> ·
  <a href="summary">summary</a> and <a href="failed">every failed task</a> (these two list the job anew)
</footer>
<noscript><p class="state">This page fills and refreshes itself with JavaScript;
without it, read <a href="snapshot.json">snapshot.json</a>.</p></noscript>
</body>
</html>
]]

--- The page of `job_id` (any string: it is escaped).
function page.render(job_id)
  local job = page.escape(job_id)
  return (gsub(TEMPLATE, "{{JOB}}", function() return job end))
end

local ERROR_TEMPLATE = [[
<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{TITLE}}</title><link rel="stylesheet" href="/static/dashboard.css"></head>
<body><main><section class="error"><h2>{{TITLE}}</h2><p>{{TEXT}}</p></section></main></body></html>
]]

--- A small error page; title and text are escaped.
function page.error(title, text)
  local t, x = page.escape(title), page.escape(text)
  return (gsub(ERROR_TEMPLATE, "{{(%u+)}}", function(name) return name == "TITLE" and t or x end))
end

return page
