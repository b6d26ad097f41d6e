// Errors thrown in the staff pages, to Sentry. The SDK (window.Sentry) is
// static/vendor/sentry/sentry-browser.min.js; this page's settings come as JSON in
// #sentry-browser-config (planbeta/browser_sentry.py) because the Content-Security-Policy allows
// no inline script. Both are deferred and come before every other script of the page, so the
// SDK's handlers are in place before any of them runs.
//
// The same privacy rules as the server (planbeta/sentry.py): no cookies, no request bodies, no
// query strings or fragments, no form values or page text, no headers but the user agent and the
// referring page, the user as id and role only. The SDK's own switches (dataCollection) turn
// collection off; beforeSend and beforeBreadcrumb keep only what is listed here, whatever an
// integration attached. Errors only: no tracing, no session replay (the bundle carries neither),
// no release-health sessions, no console or DOM breadcrumbs.
(function () {
  "use strict";

  var node = document.getElementById("sentry-browser-config");
  var Sentry = window.Sentry;
  if (!node || !Sentry) return;
  var config = JSON.parse(node.textContent);

  // The page's own requests, history changes and earlier events say what led to an error. Clicks
  // and key presses (the SDK's "ui" crumbs) name elements and their labels, and console output
  // carries whatever a script printed: neither is kept.
  var KEPT_BREADCRUMBS = { fetch: true, xhr: true, navigation: true, "sentry.event": true };

  function withoutQuery(url) {
    if (typeof url !== "string") return undefined;
    var cut = url.search(/[?#]/);
    return cut === -1 ? url : url.slice(0, cut);
  }

  function scrubBreadcrumb(crumb) {
    if (!crumb || !KEPT_BREADCRUMBS[crumb.category]) return null;
    var data = crumb.data || {};
    var kept = { type: crumb.type, category: crumb.category, level: crumb.level, timestamp: crumb.timestamp };
    if (crumb.category === "sentry.event") {
      kept.event_id = crumb.event_id;
      kept.message = crumb.message; // "Type: message" of an error already sent
    } else {
      kept.data = {};
      if (data.method) kept.data.method = String(data.method);
      if (data.status_code) kept.data.status_code = data.status_code;
      ["url", "from", "to"].forEach(function (key) {
        if (data[key]) kept.data[key] = withoutQuery(String(data[key]));
      });
    }
    return kept;
  }

  function scrubFrames(exception) {
    var frames = (exception.stacktrace && exception.stacktrace.frames) || [];
    frames.forEach(function (frame) {
      frame.filename = withoutQuery(frame.filename);
      frame.abs_path = withoutQuery(frame.abs_path);
      delete frame.vars;
      delete frame.pre_context;
      delete frame.context_line;
      delete frame.post_context;
    });
  }

  function beforeSend(event) {
    var request = event.request || {};
    var headers = request.headers || {};
    event.request = { url: withoutQuery(request.url) };
    var kept = {};
    if (headers["User-Agent"]) kept["User-Agent"] = String(headers["User-Agent"]);
    if (headers.Referer) kept.Referer = withoutQuery(String(headers.Referer));
    event.request.headers = kept;
    event.user = { id: config.user.id, role: config.user.role };
    // A failing event listener's arguments (the DOM event) land in extra; nothing else of ours
    // goes there.
    delete event.extra;
    if (event.exception && event.exception.values) event.exception.values.forEach(scrubFrames);
    if (event.breadcrumbs) {
      event.breadcrumbs = event.breadcrumbs.map(scrubBreadcrumb).filter(Boolean);
    }
    return event;
  }

  Sentry.init({
    dsn: config.dsn,
    environment: config.environment,
    release: config.release || undefined,
    // SDK 11 replaced sendDefaultPii with these switches; all off (and no IP inferred by Sentry).
    dataCollection: {
      userInfo: false,
      cookies: false,
      httpHeaders: { request: { allow: ["user-agent", "referer"] }, response: false },
      httpBodies: [],
      urlQueryParams: false,
      graphQL: { document: false, variables: false },
      genAI: { inputs: false, outputs: false },
      mcp: { inputs: false, outputs: false },
      databaseQueryData: false,
      queues: false,
      stackFrameVariables: false,
      frameContextLines: 0,
    },
    // The SDK's defaults less Console (breadcrumbs of console output), CultureContext,
    // ConversationId and BrowserSession (a session per page load of a multi-page app says
    // nothing, and costs a request each).
    defaultIntegrations: false,
    integrations: [
      Sentry.eventFiltersIntegration(),
      Sentry.functionToStringIntegration(),
      Sentry.browserApiErrorsIntegration(),
      Sentry.breadcrumbsIntegration({ dom: false }),
      Sentry.globalHandlersIntegration(),
      Sentry.linkedErrorsIntegration(),
      Sentry.dedupeIntegration(),
      Sentry.httpContextIntegration(),
    ],
    // Errors thrown by browser extensions are not ours, and carry what the extension saw.
    denyUrls: [/^[a-z-]+-extension:\/\//],
    beforeSend: beforeSend,
    beforeBreadcrumb: scrubBreadcrumb,
    initialScope: {
      user: { id: config.user.id, role: config.user.role },
      tags: { request_id: config.requestId },
    },
  });
})();
