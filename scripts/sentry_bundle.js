// The entry point of static/vendor/sentry/sentry-browser.min.js (built by scripts/vendor_sentry.sh).
// It exports only what static/js/sentry_init.js uses, so the bundle carries error capture and
// nothing else: no session replay, no tracing, no feedback widget, no console capture.
// captureException: static/js/activity.js reports the failures it catches itself.
export {
  SDK_VERSION,
  breadcrumbsIntegration,
  browserApiErrorsIntegration,
  captureException,
  dedupeIntegration,
  eventFiltersIntegration,
  functionToStringIntegration,
  globalHandlersIntegration,
  httpContextIntegration,
  init,
  linkedErrorsIntegration,
} from "@sentry/browser";
