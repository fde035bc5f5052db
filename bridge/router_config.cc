#include "bridge/router_config.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "bridge/link_table.h"
#include "bridge/postgres_store.h"
#include "bridge/sqlite_store.h"
#include "common/config_loader.h"
#include "common/http/http_server_config.h"
#include "common/logging.h"
#include "common/status_macros.h"

namespace imbridge::bridge {

absl::Status ValidateRouterConfig(const std::string& source,
                                  v1::RouterConfig* config) {
  if (config->listen().empty()) config->set_listen("127.0.0.1:7700");
  if (config->data_dir().empty()) {
    return ConfigError(source, "data_dir", "required");
  }
  if (auto level = ParseLogLevel(config->log_level()); !level.ok()) {
    return ConfigError(source, "log_level", level.status().message());
  }
  if (config->adapters().empty()) {
    return ConfigError(source, "adapters",
                       "at least one adapter credential is required");
  }
  absl::flat_hash_set<std::string> names;
  for (int i = 0; i < config->adapters_size(); ++i) {
    const v1::AdapterCredential& a = config->adapters(i);
    std::string path = absl::StrCat("adapters[", i, "]");
    if (a.name().empty())
      return ConfigError(source, path + ".name", "required");
    if (!names.insert(a.name()).second) {
      return ConfigError(
          source, path + ".name",
          absl::StrCat("duplicate adapter name '", a.name(), "'"));
    }
    if (a.token().empty()) {
      return ConfigError(source, path + ".token", "required (or token_file)");
    }
    if (a.token().size() < 16) {
      return ConfigError(source, path + ".token",
                         "too short: use at least 16 characters");
    }
  }
  IMB_RETURN_IF_ERROR(LinkTable::Build(config->links(), source).status());
  if (!config->admin_token().empty() && config->admin_token().size() < 16) {
    return ConfigError(source, "admin_token",
                       "too short: use at least 16 characters");
  }
  if (config->http().listen().empty()) {
    config->mutable_http()->set_listen("127.0.0.1:7701");
  }
  if (config->http().listen().rfind(':') == std::string::npos) {
    return ConfigError(
        source, "http.listen",
        absl::StrCat("'", config->http().listen(), "' is not host:port"));
  }
  IMB_RETURN_IF_ERROR(ValidateHttpServerLimits(source, config->http()));
  if (config->commands().prefix().empty()) {
    config->mutable_commands()->set_prefix("!bridge");
  }

  v1::StoreOptions* store = config->mutable_store();
  if (store->event_retention_hours() == 0)
    store->set_event_retention_hours(168);
  if (store->event_retention_hours() < 24) {
    return ConfigError(
        source, "store.event_retention_hours",
        "must be at least 24 (messengers retry for up to a day)");
  }
  if (store->max_batch() == 0) store->set_max_batch(1024);
  if (store->read_connections() == 0) {
    store->set_read_connections(kDefaultReadConnections);
  }
  if (store->read_connections() > kMaxReadConnections) {
    return ConfigError(source, "store.read_connections",
                       absl::StrCat("must be 1 to ", kMaxReadConnections));
  }
  if (store->has_postgres()) {
    v1::PostgresStoreOptions* pg = store->mutable_postgres();
    if (pg->dsn().empty()) {
      return ConfigError(source, "store.postgres.dsn",
                         "required (or dsn_file)");
    }
    if (absl::Status dsn = CheckPostgresDsn(pg->dsn()); !dsn.ok()) {
      return ConfigError(source, "store.postgres.dsn", dsn.message());
    }
    if (pg->pool_size() == 0) pg->set_pool_size(kDefaultPostgresPoolSize);
    if (!pg->blob_dir().empty() && pg->blob_dir()[0] != '/') {
      return ConfigError(source, "store.postgres.blob_dir",
                         "must be an absolute path (the same on every router)");
    }
    if (pg->pool_size() > kMaxPostgresPoolSize) {
      return ConfigError(source, "store.postgres.pool_size",
                         absl::StrCat("must be 1 to ", kMaxPostgresPoolSize));
    }
  }

  v1::DispatchOptions* d = config->mutable_dispatch();
  if (d->window() == 0) d->set_window(256);
  if (d->initial_backoff_ms() == 0) d->set_initial_backoff_ms(500);
  if (d->max_backoff_ms() == 0) d->set_max_backoff_ms(300000);
  if (d->max_backoff_ms() < d->initial_backoff_ms()) {
    return ConfigError(source, "dispatch.max_backoff_ms",
                       "must not be below dispatch.initial_backoff_ms");
  }
  if (d->delivery_ttl_seconds() == 0) d->set_delivery_ttl_seconds(86400);
  if (d->memory_queue_per_target() == 0) d->set_memory_queue_per_target(512);

  v1::BlobOptions* b = config->mutable_blobs();
  if (b->max_bytes() == 0) b->set_max_bytes(100ull << 20);
  if (b->retention_hours() == 0) b->set_retention_hours(72);
  return absl::OkStatus();
}

std::string BlobDir(const v1::RouterConfig& config) {
  const std::string& shared = config.store().postgres().blob_dir();
  return shared.empty() ? config.data_dir() + "/blobs" : shared;
}

absl::StatusOr<v1::RouterConfig> LoadRouterConfig(const std::string& path) {
  v1::RouterConfig config;
  IMB_RETURN_IF_ERROR(LoadConfigFile(path, &config));
  IMB_RETURN_IF_ERROR(ValidateRouterConfig(path, &config));
  return config;
}

}  // namespace imbridge::bridge
