--- Every default of the library, in one table, so that iot.new, the
-- transports, the pager and the CLI cannot drift apart. Values are the
-- official SDKs' where they have one (timeouts), else the service's limits.
return {
  timeout = 10,                        -- seconds for one attempt (read timeout of the SDKs)
  connect_timeout = 5,                 -- seconds
  max_body_bytes = 32 * 1024 * 1024,   -- one response body
  max_inflight_bytes = 256 * 1024 * 1024, -- every body a listing may hold in flight at once
  max_retries = 3,                     -- attempts after the first, for what may be retried
  rate_limit = 10,                     -- requests per second per AccessKeyId (the service's quota)
  rate_limit_store_timeout = 0.25,     -- seconds to connect to, and to hear from, the Redis store
  rate_limit_store_retry = 5,          -- seconds between tries of a Redis store that failed
  signature_version = "v3",            -- Alibaba's recommended signature, as the Node SDK signs
  page_size = 100,                     -- the pager's PageSize: the service's maximum
  concurrency = 4,                     -- page requests in flight in a listing
  max_concurrency = 64,
  max_passes = 3,                      -- walks of a listing's part before it is called incomplete
  credentials_refresh_margin = 180,    -- seconds before Expiration that STS credentials are renewed
  keepalive_timeout = 60,              -- seconds an idle pooled cosocket connection is kept
  pool_size = 16,                      -- idle cosocket connections kept per pool and worker
}
