// The founders' live activity feed. Plain JS, no build step.
// Everything that comes from the audit log is written with textContent, never parsed as HTML:
// a lead called <img src=x onerror=...> must show as text.
(function () {
  "use strict";

  var root = document.getElementById("activity");
  if (!root) return;

  var API = root.dataset.apiUrl;
  var EXPORT = root.dataset.exportUrl;
  // Action codes in words, from the server (audit.Action's labels); a code it does not know
  // shows as it is.
  var ACTION_LABELS = JSON.parse(root.dataset.actionLabels || "{}");
  var POLL_MS = parseInt(root.dataset.pollMs, 10) || 10000;
  // The live stream (monitoring.live) rings when new entries committed; while it is open the page
  // polls only as a safety net, every LIVE_POLL_MS. Without it, every POLL_MS as before.
  var EVENTS = root.dataset.eventsUrl;
  var LIVE_POLL_MS = 60000;
  // After the server declined a stream (or lost it for good), push is tried again this much later.
  var LIVE_RETRY_MS = 60000;
  var PAGE = 50;
  var POLL_PAGE = 200;
  var MAX_CATCH_UP_PAGES = 5;
  var MAX_ROWS = 500;
  // Ids are drawn when a row is inserted, not when it commits: a row written inside a longer
  // transaction can become visible after a newer one was already shown. Each poll therefore
  // reads again the last OVERLAP_IDS ids before the cursor and skips what is already shown.
  var OVERLAP_IDS = 100;
  var SVG_NS = "http://www.w3.org/2000/svg";

  var feed = document.getElementById("feed");
  var feedEmpty = document.getElementById("feed-empty");
  var statusEl = document.getElementById("status");
  var autoRefresh = document.getElementById("auto-refresh");
  var loadOlderBtn = document.getElementById("load-older");
  var entityBox = document.getElementById("entity-filter");
  var entityKind = document.getElementById("entity-filter-kind");
  var entityLabel = document.getElementById("entity-filter-label");
  var entitySince = document.getElementById("entity-filter-since");
  var periods = document.getElementById("periods");
  var downloadCsv = document.getElementById("download-csv");
  var searchForm = document.getElementById("search-form");
  var searchInput = document.getElementById("search");

  var state = {
    view: "all",
    entity: null, // {type, id, label}
    user: null, // {id, label}: a per-user timeline
    since: null, // YYYY-MM-DD: only entries from that day's midnight (school time) on
    q: "", // free text searched in the descriptions ("" for none)
    lastId: null, // highest id shown; polls start OVERLAP_IDS below it. null: newest not read yet
    shown: new Set(), // ids in the feed, so that the overlap shows nothing twice
    oldestId: null, // lowest id shown
    complete: false, // the feed holds the view's whole history: no older entries to load
    timer: null,
    live: null, // the EventSource while one is open
    liveUp: false, // the stream is open and rings
    liveRetry: null,
    statsAt: 0, // when the statistics were last read
    cycle: null, // the refresh in flight (a promise), or null
    again: null, // a refresh asked for while one was in flight: {stats}, run right after it
    loadingOlder: false,
    failed: false, // the last read failed; shown until one succeeds
    generation: 0, // bumps on every view change; late answers for an old view are dropped
  };

  // One format on every page, in the school's zone whatever the browser's: "1 Dec 2026, 14:05
  // IST" (core/timefmt.py). The parts come from Intl in that zone; the month names and the
  // zone's label are fixed, as the server writes them, not the browser's locale's.
  var ZONE = root.dataset.timeZone || "Asia/Kolkata";
  var ZONE_LABEL = root.dataset.zoneLabel || "IST";
  var TODAY = root.dataset.today || ""; // the school's today, YYYY-MM-DD
  var MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  var zoneParts = new Intl.DateTimeFormat("en-GB", {
    timeZone: ZONE, year: "numeric", month: "numeric", day: "numeric",
    hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  });

  function parts(moment) {
    var out = {};
    zoneParts.formatToParts(moment).forEach(function (p) { out[p.type] = p.value; });
    return out;
  }

  function formatTime(moment) {
    var p = parts(moment);
    return p.hour + ":" + p.minute + " " + ZONE_LABEL;
  }

  function formatDay(isoDay) {
    var bits = isoDay.split("-");
    return parseInt(bits[2], 10) + " " + MONTHS[parseInt(bits[1], 10) - 1] + " " + bits[0];
  }

  function formatMoment(moment) {
    var p = parts(moment);
    return parseInt(p.day, 10) + " " + MONTHS[parseInt(p.month, 10) - 1] + " " + p.year + ", " +
      p.hour + ":" + p.minute + " " + ZONE_LABEL;
  }

  // An entity by its name when the server gave one ("Invoice PB-2026-0007"), else its id.
  function entityText(type, id, label) {
    return label ? type + " " + label : type + " #" + id;
  }

  document.getElementById("poll-seconds").textContent = String(Math.round(POLL_MS / 1000));

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  // The view's filters, by the API's names: the page's own address, its reads and its export
  // all carry the same ones.
  function filters() {
    var q = new URLSearchParams();
    if (state.view === "errors") q.set("type", "errors");
    if (state.entity) {
      q.set("entityType", state.entity.type);
      q.set("entityId", state.entity.id);
    }
    if (state.user) q.set("userId", state.user.id);
    if (state.since) q.set("since", state.since);
    if (state.q) q.set("q", state.q);
    return q;
  }

  function url(params) {
    var q = filters();
    Object.keys(params).forEach(function (k) { q.set(k, params[k]); });
    return API + "?" + q.toString();
  }

  function actionLabel(code) {
    return Object.prototype.hasOwnProperty.call(ACTION_LABELS, code) ? ACTION_LABELS[code] : code;
  }

  function actionNode(code) {
    var node = el("span", "action", actionLabel(code));
    node.dataset.action = code;
    node.title = code;
    return node;
  }

  function getJSON(address) {
    return fetch(address, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (res) {
        if (res.status === 401) throw expected("Your session has ended: log in again.");
        if (res.status === 403) throw expected("Only founders can see the activity log.");
        if (!res.ok) throw new Error("The server answered " + res.status + ".");
        return res.json();
      });
  }

  function setStatus(text, isError) {
    statusEl.textContent = text;
    statusEl.classList.toggle("error", !!isError);
  }

  // data-state on #activity says what the page is doing: "busy" while a read is on its way,
  // else "idle" (the next poll, if any, is waiting on its timer) or "error" (the last read
  // failed). Tests, and anyone looking at the page, wait for it instead of guessing a time.
  function showState() {
    root.dataset.state = state.cycle || state.loadingOlder ? "busy" : state.failed ? "error" : "idle";
  }

  // A failed read is shown on the page and sent to Sentry (when the page loads the SDK): catching
  // it without telling anyone would leave a dashboard that silently stopped updating. A session
  // that ended or a missing role is the user's situation, not a fault: shown only.
  function report(err) {
    var Sentry = window.Sentry;
    if (!err.expected && Sentry && typeof Sentry.captureException === "function") {
      Sentry.captureException(err);
    }
  }

  function expected(message) {
    var err = new Error(message);
    err.expected = true;
    return err;
  }

  // --- entries -------------------------------------------------------------------------------

  function entry(log) {
    var li = el("li", "entry sev-" + log.severity);
    li.dataset.id = String(log.id);

    var head = el("div", "entry-head");
    head.appendChild(el("span", "badge sev-" + log.severity, log.severity));
    head.appendChild(actionNode(log.action));
    var when = el("time", "when", formatMoment(new Date(log.createdAt)));
    when.dateTime = log.createdAt;
    head.appendChild(when);
    li.appendChild(head);

    li.appendChild(el("p", "description", log.description));

    var meta = el("p", "meta");
    if (log.entityType && !log.entityId) {
      // A row about a kind of thing but no particular one (a failed login): nothing to filter by.
      meta.appendChild(el("span", "entity", log.entityType));
    } else if (log.entityType) {
      var link = el("a", "entity-link", entityText(log.entityType, log.entityId, log.entityLabel));
      link.href = "#";
      link.title = "Show the history of " + log.entityType + " #" + log.entityId;
      link.addEventListener("click", function (ev) {
        ev.preventDefault();
        filterEntity(log.entityType, log.entityId, log.entityLabel);
      });
      meta.appendChild(link);
    }
    var who = log.userName || log.userEmail ? (log.userName || "") + (log.userEmail ? " <" + log.userEmail + ">" : "") : "system";
    if (log.userId) {
      var userLink = el("a", "who user-link", who);
      userLink.href = "#";
      userLink.title = "Show what this person did";
      userLink.addEventListener("click", function (ev) {
        ev.preventDefault();
        filterUser(log.userId, log.userName || log.userEmail);
      });
      meta.appendChild(userLink);
    } else {
      meta.appendChild(el("span", "who", who));
    }
    if (log.ipAddress) meta.appendChild(el("span", "ip", "IP " + log.ipAddress));
    li.appendChild(meta);

    if ((log.severity === "ERROR" || log.severity === "CRITICAL") && log.errorMessage) {
      li.appendChild(el("pre", "error-message", log.errorMessage));
    }
    return li;
  }

  function prepend(logs) {
    var frag = document.createDocumentFragment();
    logs.forEach(function (log) {
      state.shown.add(log.id);
      var li = entry(log);
      li.classList.add("new");
      frag.appendChild(li);
    });
    feed.insertBefore(frag, feed.firstChild);
    while (feed.children.length > MAX_ROWS) feed.removeChild(feed.lastChild);
  }

  function append(logs) {
    var frag = document.createDocumentFragment();
    logs.forEach(function (log) {
      if (state.shown.has(log.id)) return;
      state.shown.add(log.id);
      frag.appendChild(entry(log));
    });
    feed.appendChild(frag);
  }

  function updateEmpty() {
    feedEmpty.hidden = feed.children.length > 0;
  }

  function clearFeed() {
    feed.textContent = "";
    state.shown = new Set();
  }

  // --- loading -------------------------------------------------------------------------------

  // The newest entries of the current view, replacing whatever the feed shows.
  function loadNewest() {
    var gen = state.generation;
    return getJSON(url({ limit: PAGE })).then(function (data) {
      if (gen !== state.generation) return;
      clearFeed();
      append(data.logs);
      state.lastId = data.nextCursor === null ? 0 : data.nextCursor;
      state.oldestId = data.logs.length ? data.logs[data.logs.length - 1].id : null;
      state.complete = data.logs.length < PAGE;
      loadOlderBtn.hidden = state.complete;
      updateEmpty();
    });
  }

  function loadOlder() {
    if (state.oldestId === null || state.loadingOlder) return;
    var gen = state.generation;
    state.loadingOlder = true;
    showState();
    getJSON(url({ limit: PAGE, before: state.oldestId })).then(function (data) {
      if (gen !== state.generation) return;
      append(data.logs);
      if (data.logs.length) state.oldestId = data.logs[data.logs.length - 1].id;
      state.complete = data.logs.length < PAGE;
      loadOlderBtn.hidden = state.complete;
      updateEmpty();
    }).catch(function (err) {
      report(err);
      state.failed = true;
      setStatus(err.message, true);
    }).then(function () {
      state.loadingOlder = false;
      showState();
    });
  }

  // Fetch only what is newer than the last entry shown. A full page means more are waiting
  // (e.g. after the tab was hidden for a while): keep reading forward, a few pages at most.
  function pollNew(pagesLeft) {
    var gen = state.generation;
    var after = Math.max(0, state.lastId - OVERLAP_IDS);
    return getJSON(url({ after: after, limit: POLL_PAGE })).then(function (data) {
      if (gen !== state.generation) return;
      // The overlap reaches below the oldest entry shown when the feed holds fewer than
      // OVERLAP_IDS of them: what lies there is older history, which "Load older entries"
      // brings in at the bottom, not news for the top.
      var floor = state.complete ? 0 : state.oldestId;
      var fresh = data.logs.filter(function (log) {
        return !state.shown.has(log.id) && log.id > floor;
      });
      if (fresh.length) prepend(fresh);
      if (data.nextCursor !== null) state.lastId = Math.max(state.lastId, data.nextCursor);
      updateEmpty();
      if (data.logs.length === POLL_PAGE && pagesLeft > 1) return pollNew(pagesLeft - 1);
      if (data.logs.length === POLL_PAGE) return loadNewest(); // too far behind: start afresh
    });
  }

  // Every read's outcome, failed or not, once all of them have answered.
  function settled(reads) {
    return Promise.all(reads.map(function (read) {
      return read.then(function () { return null; }, function (err) {
        return err instanceof Error ? err : new Error(String(err));
      });
    })).then(function (outcomes) { return outcomes.filter(Boolean); });
  }

  // One refresh at a time, and it ends only when both its reads (feed and stats) have answered,
  // even when one failed at once: an answer still on its way must not land in the middle of the
  // next refresh. A refresh asked for meanwhile (a catch-up when the tab is shown again, a view
  // change) is not dropped: it runs right after. The feed is read afresh until its newest entries
  // have arrived once, so a first read that failed is read again on the next poll.
  function refresh(withStats) {
    if (state.cycle) {
      state.again = { stats: withStats || (state.again !== null && state.again.stats) };
      return state.cycle;
    }
    clearTimeout(state.timer);
    state.timer = null;
    var reads = [state.lastId === null ? loadNewest() : pollNew(MAX_CATCH_UP_PAGES)];
    if (withStats) {
      state.statsAt = Date.now();
      reads.push(loadStats());
    }
    state.cycle = settled(reads).then(function (errors) {
      state.cycle = null;
      errors.forEach(report);
      state.failed = errors.length > 0;
      if (state.again) {
        var next = state.again;
        state.again = null;
        if (state.failed) setStatus(errors[0].message, true);
        return refresh(next.stats);
      }
      schedule();
      if (state.failed) setStatus(errors[0].message + (state.timer ? " Retrying." : ""), true);
      else setStatus("Updated " + formatTime(new Date()));
      showState();
    });
    showState();
    return state.cycle;
  }

  // --- stats and chart -----------------------------------------------------------------------

  function loadStats() {
    return getJSON(API + "?type=stats").then(function (data) {
      var s = data.stats;
      document.getElementById("stat-total").textContent = String(s.totalLogs);
      document.getElementById("stat-errors").textContent = String(s.errorCount);
      document.getElementById("stat-critical").textContent = String(s.criticalCount);
      document.getElementById("stat-warnings").textContent = String(s.warningCount);
      var list = document.getElementById("top-actions");
      list.textContent = "";
      s.topActions.forEach(function (item) {
        var li = el("li");
        li.appendChild(actionNode(item.action));
        li.appendChild(el("span", "count", item.count));
        list.appendChild(li);
      });
      drawChart(s.hourly || []);
    });
  }

  function svg(tag, attrs) {
    var node = document.createElementNS(SVG_NS, tag);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, String(attrs[k])); });
    return node;
  }

  function drawChart(hours) {
    var box = document.getElementById("chart");
    var W = 720, H = 170, top = 10, bottom = 24, left = 34;
    var plotH = H - top - bottom;
    var max = hours.reduce(function (m, h) { return Math.max(m, h.total); }, 0) || 1;
    var slot = (W - left) / Math.max(hours.length, 1);
    var chart = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", class: "chart-svg" });
    var title = svg("title", {});
    title.textContent = "Events and errors per hour, last 24 hours";
    chart.appendChild(title);
    chart.appendChild(svg("line", { x1: left, y1: top + plotH, x2: W, y2: top + plotH, class: "axis" }));
    var maxLabel = svg("text", { x: left - 4, y: top + 8, class: "tick", "text-anchor": "end" });
    maxLabel.textContent = String(max);
    chart.appendChild(maxLabel);
    hours.forEach(function (h, i) {
      var x = left + i * slot + 2;
      var w = Math.max(slot - 4, 1);
      var th = Math.round((h.total / max) * plotH);
      var eh = Math.round((h.errors / max) * plotH);
      var g = svg("g", {});
      var tip = svg("title", {});
      tip.textContent = formatMoment(new Date(h.hour)) + ": " + h.total + " events, " + h.errors + " errors";
      g.appendChild(tip);
      g.appendChild(svg("rect", { x: x, y: top + plotH - th, width: w, height: th, class: "bar-total" }));
      if (eh > 0) {
        g.appendChild(svg("rect", { x: x, y: top + plotH - eh, width: w, height: eh, class: "bar-errors" }));
      }
      if (i % 3 === 0) {
        var label = svg("text", { x: x + w / 2, y: H - 6, class: "tick", "text-anchor": "middle" });
        label.textContent = formatTime(new Date(h.hour)).split(" ")[0];
        g.appendChild(label);
      }
      chart.appendChild(g);
    });
    box.textContent = "";
    box.appendChild(chart);
    // On a phone the box scrolls: show the latest hours, the ones a founder looks for.
    box.scrollLeft = box.scrollWidth;
  }

  // --- controls ------------------------------------------------------------------------------

  // The next poll, unless auto-refresh is off or the tab is hidden. While a refresh is in flight
  // nothing is armed: its end arms the timer.
  function schedule() {
    clearTimeout(state.timer);
    state.timer = null;
    if (state.cycle || !autoRefresh.checked || document.hidden) return;
    state.timer = setTimeout(function () {
      state.timer = null;
      refresh(true);
    }, state.liveUp ? LIVE_POLL_MS : POLL_MS);
  }

  // The view or the entity filter changed: the feed starts afresh (the statistics do not depend
  // on it).
  function restart() {
    state.generation++;
    state.lastId = null;
    state.oldestId = null;
    state.complete = false;
    clearFeed();
    loadOlderBtn.hidden = true;
    feedEmpty.hidden = true;
    setStatus("Loading…");
    refresh(false);
  }

  // The view lives in the page's address (?type=errors&entityType=Invoice&entityId=7, or
  // &userId=3): a link to it opens the same view, a reload keeps it, and Back goes to the one
  // before. Each change the user makes is a history entry of its own.
  // A person's name is not in the address: the history entry keeps it, and the server gives it
  // for the address the page was opened with (no replaceState for that: a history change is a
  // breadcrumb of the browser Sentry, and loading the page is not one).
  var OPENED_WITH = new URLSearchParams(window.location.search);
  var OPENED_WITH_USER = OPENED_WITH.get("userId");
  var OPENED_WITH_ENTITY = { type: OPENED_WITH.get("entityType"), id: OPENED_WITH.get("entityId") };

  // The API's bounds for `q` (3-100 characters, three letters or digits in a row): a search the
  // API would refuse is not sent, and one in an address is left out of the view.
  function searchText(value) {
    var text = (value || "").trim();
    return text.length <= 100 && /[\p{L}\p{N}]{3}/u.test(text) ? text : "";
  }

  function readAddress(labels) {
    var q = new URLSearchParams(window.location.search);
    state.q = searchText(q.get("q"));
    state.view = q.get("type") === "errors" ? "errors" : "all";
    var type = q.get("entityType");
    var id = q.get("entityId");
    var opened = type === OPENED_WITH_ENTITY.type && id === OPENED_WITH_ENTITY.id;
    state.entity = type && id
      ? { type: type, id: id, label: (labels && labels.entityLabel) || (opened && root.dataset.entityLabel) || null }
      : null;
    var user = q.get("userId");
    state.user = !state.entity && user && /^[0-9]+$/.test(user)
      ? { id: user, label: (labels && labels.userLabel) || (user === OPENED_WITH_USER && root.dataset.userLabel) || "user #" + user }
      : null;
    var since = q.get("since");
    state.since = since && /^[0-9]{4}-[0-9]{2}-[0-9]{2}$/.test(since) ? since : null;
  }

  function writeAddress() {
    var q = filters().toString();
    var address = window.location.pathname + (q ? "?" + q : "");
    if (address !== window.location.pathname + window.location.search) {
      window.history.pushState({
        userLabel: state.user ? state.user.label : null,
        entityLabel: state.entity ? state.entity.label : null,
      }, "", address);
    }
  }

  // The controls say which view is shown: the pressed button, the heading over a history, the
  // export's filters.
  function showView() {
    document.querySelectorAll(".view-btn").forEach(function (btn) {
      var on = btn.dataset.view === state.view;
      btn.classList.toggle("active", on);
      btn.setAttribute("aria-pressed", on ? "true" : "false");
    });
    if (state.entity) {
      entityKind.textContent = "History of";
      entityLabel.textContent = entityText(state.entity.type, state.entity.id, state.entity.label);
    } else if (state.user) {
      entityKind.textContent = "Activity of";
      entityLabel.textContent = state.user.label;
    } else {
      entityKind.textContent = "All activity";
      entityLabel.textContent = "";
    }
    entitySince.textContent = !state.since ? "" : state.since === TODAY ? "today" : "since " + formatDay(state.since);
    entityBox.hidden = !state.entity && !state.user && !state.since;
    // "Today" or "All time" for a person's timeline ("what did Anna do today").
    periods.hidden = !state.user;
    periods.querySelectorAll(".period-btn").forEach(function (btn) {
      var on = btn.dataset.period === (state.since === TODAY ? "today" : state.since ? "" : "all");
      btn.classList.toggle("active", on);
      btn.setAttribute("aria-pressed", on ? "true" : "false");
    });
    searchInput.value = state.q;
    var q = filters();
    q.set("format", "csv");
    downloadCsv.href = EXPORT + "?" + q.toString();
  }

  function changeView() {
    writeAddress();
    showView();
    restart();
  }

  function setView(view) {
    state.view = view;
    changeView();
  }

  // A history is of one entity or one person, never both at once.
  function filterEntity(type, id, label) {
    state.entity = { type: type, id: id, label: label || null };
    state.user = null;
    state.since = null;
    changeView();
  }

  function filterUser(id, label) {
    state.user = { id: String(id), label: label || "user #" + id };
    state.entity = null;
    changeView();
  }

  periods.querySelectorAll(".period-btn").forEach(function (btn) {
    btn.addEventListener("click", function () {
      state.since = btn.dataset.period === "today" ? TODAY : null;
      changeView();
    });
  });

  document.querySelectorAll(".view-btn").forEach(function (btn) {
    btn.addEventListener("click", function () { setView(btn.dataset.view); });
  });
  document.getElementById("entity-filter-clear").addEventListener("click", function () {
    state.entity = null;
    state.user = null;
    state.since = null;
    changeView();
  });
  window.addEventListener("popstate", function (ev) {
    readAddress(ev.state);
    showView();
    restart();
  });
  // A search narrows whatever view is shown (All or Errors, an entity's or a person's history);
  // an empty box shows the view without it.
  searchForm.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var text = searchText(searchInput.value);
    if (searchInput.value.trim() && !text) {
      setStatus("Search for 3 to 100 characters, with three letters or digits in a row.", true);
      return;
    }
    if (text === state.q) return;
    state.q = text;
    changeView();
  });
  loadOlderBtn.addEventListener("click", loadOlder);
  autoRefresh.addEventListener("change", function () {
    if (autoRefresh.checked) refresh(true); // catches up at once
    else schedule();
  });
  // A hidden tab does not poll; on return it catches up at once with everything it missed.
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) schedule();
    else if (autoRefresh.checked) refresh(true);
  });

  // --- live stream ---------------------------------------------------------------------------

  function showLive() {
    root.dataset.live = state.liveUp ? "push" : "poll";
    document.getElementById("refresh-mode").textContent = state.liveUp
      ? "live"
      : "every " + Math.round(POLL_MS / 1000) + " s";
  }

  function closeLive() {
    if (state.live) state.live.close();
    state.live = null;
    state.liveUp = false;
    showLive();
  }

  // Push where the browser and the server can; any trouble falls back to polling. EventSource
  // reconnects by itself after a stream ends; it gives up (readyState CLOSED) when the server
  // answers 204 or an error status, and then the page tries again LIVE_RETRY_MS later.
  function openLive() {
    clearTimeout(state.liveRetry);
    state.liveRetry = null;
    if (!EVENTS || !window.EventSource || state.live || !autoRefresh.checked || document.hidden) return;
    var source = new EventSource(EVENTS);
    state.live = source;
    source.addEventListener("ready", function () {
      state.liveUp = true;
      showLive();
      // Rows may have committed before the stream was open (at load, or while it reconnected).
      refresh(false);
    });
    source.addEventListener("audit", function () {
      // The statistics at most as often as polling would read them.
      refresh(Date.now() - state.statsAt >= POLL_MS);
    });
    source.addEventListener("fallback", function () { dropLive(); });
    source.addEventListener("error", function () {
      if (source.readyState === EventSource.CLOSED) dropLive();
      else if (state.liveUp) {
        // Reconnecting: until it is back, poll.
        state.liveUp = false;
        showLive();
        schedule();
      }
    });
  }

  function dropLive() {
    closeLive();
    schedule();
    state.liveRetry = setTimeout(openLive, LIVE_RETRY_MS);
  }

  autoRefresh.addEventListener("change", function () {
    if (autoRefresh.checked) openLive();
    else closeLive();
  });
  // A hidden tab holds no stream (each takes a thread on the server) and does not poll.
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) closeLive();
    else openLive();
  });

  readAddress(null);
  showView();
  showLive();
  openLive();
  setStatus("Loading…");
  refresh(true);
})();
