// The rollout dashboard: fills the page from snapshot.json and polls it.
// No framework, no build step. Every string from the server is put in the
// DOM as text (textContent, attribute values set one by one), never parsed
// as HTML, so a TaskDesc or DeviceName cannot become markup or code.
(function () {
  'use strict';

  var body = document.body;
  var $ = function (id) { return document.getElementById(id); };
  var pollTimer = null;
  var last = null;         // the latest snapshot.json answer
  var fetchedAt = 0;       // Date.now() when it arrived
  var failures = 0;        // consecutive failed polls
  var inFlight = false;

  // An array whatever the server's JSON encoder made of an empty one ({}).
  function list(x) { return Array.isArray(x) ? x : []; }

  function el(tag, className, text) {
    var e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  function fmtInt(n) { return Number(n || 0).toLocaleString('en-US'); }
  function fmtPct(p) { return (Math.round(Number(p || 0) * 10) / 10).toFixed(1) + '%'; }
  function fmtSeconds(s) {
    s = Number(s || 0);
    if (s < 1) return Math.round(s * 1000) + ' ms';
    if (s < 10) return s.toFixed(2) + ' s';
    if (s < 120) return Math.round(s) + ' s';
    return Math.floor(s / 60) + ' min ' + Math.round(s % 60) + ' s';
  }
  function pad(n) { return (n < 10 ? '0' : '') + n; }
  // A snapshot's time: the viewer's local time, with its UTC offset.
  function fmtTime(epoch) {
    var d = new Date(epoch * 1000);
    var off = -d.getTimezoneOffset();
    var sign = off >= 0 ? '+' : '-';
    off = Math.abs(off);
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' +
      pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds()) +
      ' UTC' + sign + pad(Math.floor(off / 60)) + ':' + pad(off % 60);
  }
  function ago(seconds) {
    seconds = Math.max(0, Math.round(seconds));
    if (seconds < 90) return seconds + ' s ago';
    if (seconds < 5400) return Math.round(seconds / 60) + ' min ago';
    return Math.round(seconds / 3600) + ' h ago';
  }

  function setState(state, text) {
    body.setAttribute('data-state', state);
    var s = $('state');
    s.textContent = text || '';
    s.hidden = !text;
  }

  function showError(err, snap, listing) {
    var box = $('error');
    if (!err) { box.hidden = true; return; }
    box.hidden = false;
    $('error-title').textContent = snap ? 'The latest listing failed: the numbers below are older'
                                        : 'The listing failed';
    $('error-code').textContent = err.code || '';
    $('error-message').textContent = err.message || '';
    $('error-request-id').textContent = err.request_id || '(none)';
    var note = err.at ? 'At ' + fmtTime(err.at) + '. ' : '';
    note += listing ? 'Listing again now…' : 'The next listing is due within the refresh interval.';
    $('error-note').textContent = note;
  }

  function renderStatuses(snap) {
    var total = snap.total || 0;
    var ul = $('statuses');
    var stack = $('stack');
    clear(ul);
    clear(stack);
    list(snap.statuses).forEach(function (s) {
      var li = el('li', 'status');
      li.setAttribute('data-status', s.status);
      li.setAttribute('data-count', String(s.count));
      li.appendChild(el('span', 'name', s.status));
      var bar = el('span', 'bar');
      var fill = el('span', 'fill');
      fill.setAttribute('data-status', s.status);
      fill.style.width = (total ? (100 * s.count / total) : 0) + '%';
      bar.appendChild(fill);
      li.appendChild(bar);
      li.appendChild(el('span', 'count', fmtInt(s.count)));
      li.appendChild(el('span', 'percent', fmtPct(s.percent)));
      ul.appendChild(li);
      if (s.count > 0) {
        var seg = el('span', 'seg');
        seg.setAttribute('data-status', s.status);
        seg.style.width = (100 * s.count / total) + '%';
        seg.title = s.status + ': ' + fmtInt(s.count);
        stack.appendChild(seg);
      }
    });
    $('total').textContent = fmtInt(total);
    $('done').textContent = fmtPct(snap.percent_done);
    $('failed-total').textContent = fmtInt((snap.failed || {}).total);
    $('overview').hidden = false;
  }

  function renderFailures(snap) {
    var f = snap.failed || {};
    var groups = list(f.groups);
    var box = $('failure-groups');
    clear(box);
    $('failures').hidden = false;
    if (!f.total) {
      $('failures-sub').textContent = '';
      box.appendChild(el('p', 'empty', 'No failed task.'));
      $('failures-note').textContent = '';
      return;
    }
    var reasons = groups.length + (f.other_groups || 0);
    $('failures-sub').textContent = fmtInt(f.total) + ' failed, ' + fmtInt(reasons) +
      (reasons === 1 ? ' reason' : ' reasons');
    groups.forEach(function (g) {
      var d = el('details', 'group');
      d.setAttribute('data-count', String(g.count));
      var sum = el('summary');
      sum.appendChild(el('span', 'count', fmtInt(g.count)));
      sum.appendChild(el('span', 'desc', g.desc));
      d.appendChild(sum);
      var ul = el('ul', 'devices');
      list(g.devices).forEach(function (name) { ul.appendChild(el('li', 'device', name)); });
      d.appendChild(ul);
      if (g.more > 0) d.appendChild(el('p', 'more', 'and ' + fmtInt(g.more) + ' more devices'));
      box.appendChild(d);
    });
    $('failures-note').textContent = f.other_groups ?
      fmtInt(f.other_groups) + ' rarer reasons (' + fmtInt(f.other_count) + ' tasks) are not shown.' : '';
  }

  function renderInProgress(snap) {
    var p = snap.in_progress || {};
    var tasks = list(p.tasks);
    var tbody = $('in-progress-rows');
    clear(tbody);
    $('in-progress').hidden = false;
    $('in-progress-sub').textContent = p.total ?
      (tasks.length < p.total ? 'the first ' + fmtInt(tasks.length) + ' of ' + fmtInt(p.total) : fmtInt(p.total))
      : '';
    if (!p.total) {
      var tr0 = el('tr', 'empty');
      var td0 = el('td', null, 'No task in progress.');
      td0.colSpan = 3;
      tr0.appendChild(td0);
      tbody.appendChild(tr0);
      return;
    }
    tasks.forEach(function (t) {
      var tr = el('tr', 'task');
      tr.appendChild(el('td', 'device', t.DeviceName));
      var td = el('td', 'progress');
      var pct = typeof t.Progress === 'number' ? t.Progress : 0;
      var bar = el('progress');
      bar.max = 100;
      bar.value = pct;
      td.appendChild(bar);
      td.appendChild(el('span', 'progress-value', pct.toFixed(2) + '%'));
      tr.appendChild(td);
      tr.appendChild(el('td', 'modified', String(t.UtcModified || '').replace('T', ' ').replace(/\.\d+Z$/, '')));
      tbody.appendChild(tr);
    });
  }

  function renderMeta(j) {
    var snap = j.snapshot;
    $('interval').textContent = j.interval < 120 ? j.interval + ' s' : fmtSeconds(j.interval);
    // A listing running now: a quiet mark in the meta line (no banner that
    // would push the page down every interval).
    $('refreshing').classList.toggle('on', !!(j.snapshot && j.listing));
    if (snap) {
      $('taken-at').textContent = fmtTime(snap.taken_at);
      $('taken-at').setAttribute('datetime', new Date(snap.taken_at * 1000).toISOString());
      $('duration').textContent = fmtSeconds(snap.duration);
      body.setAttribute('data-taken-at', String(snap.taken_at));
    }
    tickAge();
  }

  // "12 s ago", from the server's clock (not the viewer's, which may be off).
  function tickAge() {
    if (!last || !last.snapshot) { $('age').textContent = ''; return; }
    var age = last.now - last.snapshot.taken_at + (Date.now() - fetchedAt) / 1000;
    $('age').textContent = '(' + ago(age) + ')';
  }

  function render(j) {
    last = j;
    fetchedAt = Date.now();
    var snap = j.snapshot;
    renderMeta(j);
    showError(j.error, snap, j.listing);
    if (!snap) {
      if (j.state === 'error') {
        setState('error', '');
      } else {
        var p = j.progress;
        setState('listing', 'Listing… the first snapshot of this job is being built' +
          (p && p.total ? ' (' + fmtInt(p.listed) + ' of ' + fmtInt(p.total) + ' tasks).' : '.'));
      }
      $('overview').hidden = $('failures').hidden = $('in-progress').hidden = true;
      return;
    }
    setState(j.error ? 'stale' : 'ready', '');
    renderStatuses(snap);
    renderFailures(snap);
    renderInProgress(snap);
  }

  // How long until the next poll: half the refresh interval (at least 1 s),
  // every second while the first snapshot is built, longer while the server
  // does not answer.
  function nextDelay(j) {
    if (failures) return Math.min(30000, 1000 * Math.pow(2, failures));
    if (!j || !j.snapshot) return 1000;
    return Math.max(1000, 500 * (j.interval || 10));
  }

  function poll() {
    pollTimer = null;
    if (inFlight) return;
    inFlight = true;
    fetch('snapshot.json', { cache: 'no-store', headers: { Accept: 'application/json' } })
      .then(function (r) {
        return r.json().then(function (j) { return j; }, function () {
          throw new Error('HTTP ' + r.status + ' (not JSON)');
        });
      })
      .then(function (j) {
        inFlight = false;
        failures = 0;
        render(j);
        schedule(nextDelay(j));
      })
      .catch(function (e) {
        inFlight = false;
        failures += 1;
        setState(last && last.snapshot ? 'stale' : 'offline',
          'The dashboard server does not answer (' + e.message + '); trying again.');
        schedule(nextDelay(last));
      });
  }

  function schedule(ms) {
    if (pollTimer) clearTimeout(pollTimer);
    pollTimer = document.hidden ? null : setTimeout(poll, ms);
  }

  // A hidden tab stops polling; it polls at once when shown again.
  document.addEventListener('visibilitychange', function () {
    if (document.hidden) { if (pollTimer) clearTimeout(pollTimer); pollTimer = null; }
    else if (!pollTimer && !inFlight) poll();
  });

  setState('listing', 'Loading…');
  setInterval(tickAge, 1000);
  poll();
})();
